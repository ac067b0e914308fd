import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `POST /internal/v1/consistency` (service token): runs the consistency check
/// (`ConsistencyCheck`) and answers its report.
///
/// Body, every field optional: `{"repair": false, "tenant": "<id>", "grace_seconds": 3600}` —
/// `repair` removes what is found (else it only reports); `tenant` checks one tenant (else all,
/// and the directories of tenants that are gone); `grace_seconds` is how long a file must have
/// been left unchanged to be judged (0 judges every file: only with no writes under way).
struct ConsistencyController: Sendable {
    let check: ConsistencyCheck

    struct Options: Decodable {
        var repair: Bool?
        var tenant: UUID?
        var graceSeconds: Int?

        enum CodingKeys: String, CodingKey {
            case repair, tenant
            case graceSeconds = "grace_seconds"
        }
    }

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post("/v1/consistency") { request, context in
            let options = try await Self.options(request, context)
            if let grace = options.graceSeconds, grace < 0 {
                throw APIError.validation(field: "grace_seconds", "grace_seconds must be 0 or more")
            }
            let report = try await check.run(tenant: options.tenant, repair: options.repair ?? false,
                                             grace: options.graceSeconds.map(TimeInterval.init) ?? ConsistencyCheck.defaultGrace)
            context.logger.info("consistency check", metadata: [
                "consistent": "\(report.isConsistent)", "repaired": "\(report.repaired)", "tenants.checked": "\(report.tenantsChecked)",
                "tenants.inconsistent": "\(report.tenants.count)", "directories.orphaned": "\(report.directoriesWithoutTenants.count)",
            ])
            return try jsonResponse(report)
        }
    }

    /// The body's options; an empty body asks for a report of everything.
    private static func options(_ request: Request, _ context: PlatformRequestContext) async throws -> Options {
        let body = try await request.collectBody(context: context)
        return body.readableBytes == 0 ? Options() : try decodeJSON(Options.self, from: body)
    }
}
