import Foundation
import ServiceKit

/// `storage check [--repair] [--tenant <id>] [--grace-seconds <n>]`: the consistency check
/// (`ConsistencyCheck`) from the command line, with the service's own environment
/// (`DATABASE_URL`, `STORAGE_ROOT`), whether or not the service is running. Prints the report
/// as JSON. Exit status: 0 consistent (or repaired), 1 inconsistencies found and not repaired,
/// 2 a usage or configuration error, 3 the check could not run (the database unreachable, say).
public enum ConsistencyCommand {
    static let usage = "usage: storage check [--repair] [--tenant <id>] [--grace-seconds <n>]\n"

    struct Arguments: Equatable {
        var repair = false
        var tenant: UUID?
        var grace = ConsistencyCheck.defaultGrace

        init(_ arguments: [String]) throws(UsageError) {
            var remaining = arguments[...]
            while let argument = remaining.popFirst() {
                switch argument {
                case "--repair":
                    repair = true
                case "--tenant":
                    guard let value = remaining.popFirst(), let id = UUID(uuidString: value) else { throw UsageError("--tenant needs a tenant id") }
                    tenant = id
                case "--grace-seconds":
                    guard let value = remaining.popFirst(), let seconds = Int(value), seconds >= 0 else {
                        throw UsageError("--grace-seconds needs a whole number of seconds, 0 or more")
                    }
                    grace = TimeInterval(seconds)
                default:
                    throw UsageError("unknown argument \(argument)")
                }
            }
        }
    }

    struct UsageError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    /// Runs the command; returns its exit status.
    public static func run(_ arguments: [String]) async -> Int32 {
        let options: Arguments
        let configuration: ServiceConfiguration
        let settings: StorageSettings
        do {
            options = try Arguments(arguments)
            configuration = try ServiceConfiguration(service: .storage)
            settings = try StorageSettings(environment: configuration.environment)
        } catch let error as UsageError {
            printError("storage check: \(error.message)\n" + usage)
            return 2
        } catch {
            printError("storage check: invalid configuration: \(error)\n")
            return 2
        }
        let runtime = ServiceRuntime(configuration: configuration, migrations: [])
        let check = ConsistencyCheck(pool: runtime.pool, files: ObjectFiles(root: settings.root), directories: TenantDirectories(root: settings.root))
        let status: Int32
        do {
            let report = try await check.run(tenant: options.tenant, repair: options.repair, grace: options.grace)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            status = report.isConsistent || options.repair ? 0 : 1
        } catch {
            printError("storage check: the check could not run: \(error)\n")
            status = 3
        }
        await runtime.pool.close(gracePeriod: .zero)
        return status
    }

    private static func printError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
