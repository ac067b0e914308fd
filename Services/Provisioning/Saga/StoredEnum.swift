import Contracts
import Postgres

/// An enum kept in a text column whose CHECK constraint lists the values it may hold
/// (`status IN ('pending', …)` in Migrations/): its raw values are exactly those values, and
/// ProvisioningTests compares the two through `pg_constraint`, so neither can change alone.
/// A value the enum does not know fails the read with the column's name and the value (a
/// `PostgresError` of kind `.decoding`) instead of being passed on or mapped to a default.
protocol StoredEnum: RawRepresentable, CaseIterable, PostgresEncodable, PostgresDecodable where RawValue == String {}

// Public only because a public type (ProjectState) takes these as its witnesses of the
// Postgres kit's public protocols.
extension StoredEnum {
    public var postgresBind: PostgresBind { rawValue.postgresBind }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Self {
        let raw = try String.decode(postgresText: text, type: type)
        guard let value = Self(rawValue: raw) else {
            let known = allCases.map(\.rawValue).joined(separator: ", ")
            throw .malformed("not a \(Self.self) ('\(raw)'; known: \(known))")
        }
        return value
    }
}

/// The API's project lifecycle is the `projects.status` column's: one enum for both, so the
/// OpenAPI document, the database and the code name the same states. (Contracts does not
/// depend on the Postgres kit, hence the conformance here.)
extension ProjectState: StoredEnum {}
