import HTTPTypes
import Postgres

extension APIError {
    /// 503 `database_unavailable` with `Retry-After: 1`: the answer to a request that needed
    /// the database while the database could not be reached. `ErrorMiddleware` gives it for
    /// every such `PostgresError` (`databaseUnavailable(for:)`); the details go to the log only.
    public static var databaseUnavailable: APIError {
        APIError(
            .serviceUnavailable, code: "database_unavailable",
            message: "The database is unavailable right now; retry shortly.",
            headers: [.retryAfter: "1"]
        )
    }

    /// The 503 for a failure that means the database cannot be reached — a connection that
    /// could not be made or was lost, none free within the acquire timeout, the pool closed
    /// while the service shuts down — and nil for any other error.
    public static func databaseUnavailable(for error: any Error) -> APIError? {
        guard let error = error as? PostgresError else { return nil }
        switch error.kind {
        case .connectionFailed, .acquireTimeout, .poolClosed: return .databaseUnavailable
        default: return nil
        }
    }
}
