import Contracts
import Foundation
import Logging
import Synchronization

/// Writes one JSON object per line to standard error:
/// `{"ts":"…","level":"info","service":"auth","msg":"…","request.id":"…",…}`.
///
/// Structured so that log collectors need no parsing rules; metadata keys stay as given
/// (`request.id`, `tenant.id`, `db.schema`, …). Hummingbird's internal request counter
/// (`hb.request.id`) is left out: the platform's own `request.id` replaces it.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let service: String

    public init(label: String, service: String) {
        self.label = label
        self.service = service
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", LogTimestamp.now()),
            ("level", event.level.rawValue),
            ("service", service),
            ("logger", label),
            ("msg", event.message.description),
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        merged["hb.request.id"] = nil
        for key in merged.keys.sorted() {
            if let value = merged[key] { fields.append((key, value.description)) }
        }
        var line = "{"
        for (index, field) in fields.enumerated() {
            if index > 0 { line += "," }
            line += JSONLogHandler.quote(field.0) + ":" + JSONLogHandler.quote(field.1)
        }
        line += "}\n"
        StandardErrorWriter.write(line)
    }

    static func quote(_ text: String) -> String { JSONText.quote(text) }
}

/// Serialises whole lines onto standard error so concurrent log calls never interleave.
enum StandardErrorWriter {
    private static let lock = Mutex(())

    static func write(_ line: String) {
        lock.withLock { _ in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

enum LogTimestamp {
    static func now() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var parts = tm()
        var seconds = time.tv_sec
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
            time.tv_nsec / 1_000_000
        )
    }
}

/// Sets up swift-log once per process, in the configured format and level.
public enum PlatformLogging {
    private static let bootstrapped = Mutex(false)

    public static func bootstrap(_ configuration: ServiceConfiguration) {
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let service = configuration.service.rawValue
        let level = configuration.logLevel
        switch configuration.logFormat {
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label, service: service)
                handler.logLevel = level
                return handler
            }
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
