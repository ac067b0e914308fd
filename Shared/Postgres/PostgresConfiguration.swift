/// How the kit reaches PostgreSQL and how its pool behaves.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection URI or keyword/value string (`postgresql://user:pw@host:port/db`).
    /// It is handed to libpq whole (`expand_dbname`), never rebuilt by string interpolation, and
    /// never logged or put into an error description.
    public var connectionString: String
    /// Shown in `pg_stat_activity.application_name`.
    public var applicationName: String
    /// The most connections the pool opens.
    public var maximumConnections: Int
    /// How long `withConnection` waits for a free connection before failing with
    /// `.acquireTimeout`.
    public var acquireTimeout: Duration
    /// Statements running longer are cancelled by the server with `.queryCanceled`. `nil` leaves
    /// the server's setting alone.
    public var statementTimeout: Duration?
    /// libpq's `connect_timeout` (it rounds to whole seconds and treats values below 2 as 2).
    public var connectTimeout: Duration
    /// A connection is closed after this many leases instead of going back to the pool (its
    /// slot opens a fresh one); `nil` keeps connections for good. A server backend caches every
    /// relation and catalog row it has touched, and a backend that has run the DDL of thousands
    /// of tenants pays for those caches in every invalidation: at 5,000 tenants a tenant's DDL
    /// took 83 ms on long-lived backends against 34 ms on fresh ones at 3,000 (issue 16).
    public var maximumUses: Int?

    public init(
        connectionString: String,
        applicationName: String = "platform",
        maximumConnections: Int = 8,
        acquireTimeout: Duration = .seconds(5),
        statementTimeout: Duration? = .seconds(30),
        connectTimeout: Duration = .seconds(5),
        maximumUses: Int? = nil
    ) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.maximumConnections = max(1, maximumConnections)
        self.acquireTimeout = acquireTimeout
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
        self.maximumUses = maximumUses.map { max(1, $0) }
    }

    /// Session settings pinned on every connection, so that values decode the same way
    /// whatever the server's defaults are.
    var sessionOptions: String {
        var options = [
            "-c TimeZone=UTC",
            "-c DateStyle=ISO",
            "-c IntervalStyle=iso_8601",
            "-c bytea_output=hex",
            "-c standard_conforming_strings=on",
        ]
        if let statementTimeout {
            options.append("-c statement_timeout=\(statementTimeout.milliseconds)")
        }
        return options.joined(separator: " ")
    }
}

extension Duration {
    /// Whole milliseconds, rounded down, never negative.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
