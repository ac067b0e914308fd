import ServiceKit

/// The login roles a tenant's schema grants what they use there (tenant migration 6): auth's
/// (the users and the audit log) and realtime's (its functions, outbox and opted-in tables).
/// Provisioning creates the tenant's role and schema; auth and realtime connect as roles of
/// their own, which own nothing of the tenant and are members of no tenant role.
///
/// `AUTH_DATABASE_ROLE` / `REALTIME_DATABASE_ROLE`; unset, provisioning's own login role (the
/// session user of the migration): one role for the whole platform, as a development set-up
/// may have, which is not least privilege.
struct TenantGrantees: Sendable, Equatable {
    var authRole: String?
    var realtimeRole: String?

    /// The setting names tenant migration 6 reads (`current_setting(…, true)`).
    static let authSetting = "platform.auth_role"
    static let realtimeSetting = "platform.realtime_role"

    init(authRole: String? = nil, realtimeRole: String? = nil) {
        self.authRole = authRole
        self.realtimeRole = realtimeRole
    }

    init(_ configuration: ServiceConfiguration) throws {
        authRole = try Self.roleName(configuration.value("AUTH_DATABASE_ROLE"), of: "AUTH_DATABASE_ROLE")
        realtimeRole = try Self.roleName(configuration.value("REALTIME_DATABASE_ROLE"), of: "REALTIME_DATABASE_ROLE")
    }

    /// What the tenant migrations' transactions start with (`MigrationRunner.settings`).
    var migrationSettings: [String: String] {
        var settings: [String: String] = [:]
        if let authRole { settings[Self.authSetting] = authRole }
        if let realtimeRole { settings[Self.realtimeSetting] = realtimeRole }
        return settings
    }

    /// A role name as PostgreSQL keeps an unquoted one: lower case, at most 63 bytes.
    private static func roleName(_ value: String?, of key: String) throws -> String? {
        guard let name = value else { return nil }
        let allowed = name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
        guard allowed, name.utf8.count <= 63, let first = name.utf8.first, !(0x30...0x39).contains(first) else {
            throw ConfigurationError(description: "\(key) must be a role name: lower-case letters, digits and _, at most 63, not starting with a digit")
        }
        return name
    }
}
