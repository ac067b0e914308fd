import Foundation
import Postgres

/// The services' own login roles (deploy/postgres/service-roles.sql), which
/// deploy/scripts/with-postgres.sh creates in the test cluster with a password each
/// (`AUTH_DB_PASSWORD`, …): a platform of tests connects each service as its own role, as a
/// deployment does, so what one service may not read is tested where it runs.
public enum ServiceDatabaseRoles {
    /// The role `service` ("auth", …) connects as.
    public static func role(_ service: String) -> String { "platform_" + service }

    /// The URL `service` connects with to the database `url` names: its own role and password.
    public static func url(_ service: String, database url: String) throws -> String {
        let variable = service.uppercased() + "_DB_PASSWORD"
        guard let password = ProcessInfo.processInfo.environment[variable], !password.isEmpty,
              var components = URLComponents(string: url)
        else {
            throw ServiceProcessError(description: "\(variable) is not set; deploy/scripts/with-postgres.sh creates the services' roles and sets it")
        }
        components.user = role(service)
        components.password = password
        guard let result = components.string else { throw TestDatabase.Missing() }
        return result
    }

    /// Makes the services' schemas, each owned by its service's role, in the database `url`
    /// names, as the superuser: deploy/postgres/service-schemas.sql, the file a deployment runs.
    public static func prepare(database url: String) async throws {
        let file = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/postgres/service-schemas.sql")
        let sql = try String(contentsOf: file, encoding: .utf8)
        try await withPool(url: try TestDatabase.adminURL(for: url)) { admin in
            try await admin.withConnection { try await $0.execute(simple: sql) }
        }
    }
}
