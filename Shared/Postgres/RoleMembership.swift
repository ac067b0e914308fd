/// A membership in a role that lasts one transaction: `acquire` grants the role to the
/// connection's user at the start of a transaction, `release` revokes it before the commit, so
/// no other session ever sees it and a rollback leaves nothing behind.
///
/// Why: a PostgreSQL role that is a standing member of N roles rebuilds an O(N²) membership
/// list after every role change anywhere in the cluster, pays it in every privilege check that
/// needs the list, and can store a stale list when a change commits during the rebuild
/// (measured in docs/measurements/tenant-ddl-roles.md). A user that is a member of nothing
/// but, briefly, the one role it works on never pays that and never meets that race.
///
/// Granting needs CREATEROLE (PostgreSQL 15: any non-superuser role; 16: a role the user made,
/// or holds with ADMIN OPTION). A membership the user
/// already had when the value was made (a tenant provisioned before this design) is neither
/// granted nor revoked here; the tenant upgrade drops it once the tenant's grants are in.
public struct RoleMembership: Sendable {
    /// The role, or nil for a no-op (a runner without a role).
    public let role: String?
    /// True when the user was a member already: nothing to grant or revoke.
    public let standing: Bool

    /// Reads `pg_auth_members` directly (a catalog read, not a membership walk).
    ///
    /// PostgreSQL 16 gives a CREATEROLE role that creates a role a membership in it with ADMIN
    /// OPTION only (`set_option` false): it may grant the role, not act as it. That row is no
    /// standing membership here; only one that lets the user `SET ROLE` is (the column is read
    /// through `to_jsonb`, so PostgreSQL 15, which has no such column, reads every row as one).
    public init(role: String?, on connection: PostgresConnection) async throws {
        self.role = role
        guard let role else {
            self.standing = false
            return
        }
        self.standing = try await connection.query("""
            SELECT EXISTS (
                SELECT FROM pg_catalog.pg_auth_members m
                JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
                WHERE r.rolname = \(role) AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
                  AND \(unescaped: Self.usable("m"))
            ) AS member
            """).single().decode("member", as: Bool.self)
    }

    /// The condition on a `pg_auth_members` row `alias` that it lets its member act as the role
    /// (PostgreSQL 16's `set_option`; true on 15, whose memberships all do).
    public static func usable(_ alias: String) -> String {
        "coalesce((to_jsonb(\(alias)) ->> 'set_option')::boolean, true)"
    }

    /// Grants the role for the rest of the transaction `tx` is in. Fails when the role is gone.
    public func acquire(_ tx: PostgresConnection) async throws {
        guard let role, !standing else { return }
        try await tx.execute(simple: "GRANT \(PostgresQuery.quoteIdentifier(role)) TO CURRENT_USER")
    }

    /// Revokes what `acquire` granted; call it last in the transaction, after `RESET ROLE`.
    public func release(_ tx: PostgresConnection) async throws {
        guard let role, !standing else { return }
        try await tx.execute(simple: "REVOKE \(PostgresQuery.quoteIdentifier(role)) FROM CURRENT_USER")
    }
}
