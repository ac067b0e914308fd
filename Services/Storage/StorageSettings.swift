import Foundation
import ServiceKit

/// Storage's own settings, read from the service's environment.
struct StorageSettings: Sendable {
    /// `STORAGE_ROOT`: the folder holding one directory per tenant, `<root>/<tenant-id>`
    /// (default `.tmp/storage`, relative to the working directory), made absolute at start-up
    /// so a later change of directory cannot move it.
    var root: URL
    /// `STORAGE_DEFAULT_QUOTA_BYTES`: the quota a newly registered tenant gets (default 1 GiB).
    var defaultQuotaBytes: Int
    /// `STORAGE_MAX_OBJECT_BYTES`: the largest object any bucket takes (default 5 GiB); a
    /// bucket's `file_size_limit` may only be lower.
    var maximumObjectBytes: Int64

    static let defaultRoot = ".tmp/storage"
    static let defaultQuota = 1 << 30

    init(environment: [String: String]) throws {
        func value(_ key: String) -> String? {
            guard let value = environment[key]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        self.root = URL(fileURLWithPath: value("STORAGE_ROOT") ?? Self.defaultRoot, isDirectory: true).standardizedFileURL
        if let text = value("STORAGE_DEFAULT_QUOTA_BYTES") {
            guard let quota = Int(text), quota >= 0 else {
                throw ConfigurationError(description: "STORAGE_DEFAULT_QUOTA_BYTES must be a non-negative integer")
            }
            self.defaultQuotaBytes = quota
        } else {
            self.defaultQuotaBytes = Self.defaultQuota
        }
        if let text = value("STORAGE_MAX_OBJECT_BYTES") {
            guard let maximum = Int64(text), maximum > 0 else {
                throw ConfigurationError(description: "STORAGE_MAX_OBJECT_BYTES must be a positive integer")
            }
            self.maximumObjectBytes = maximum
        } else {
            self.maximumObjectBytes = 5 << 30
        }
    }
}
