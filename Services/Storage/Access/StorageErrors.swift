import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// The Storage API's words for every error on `/storage/v1/` (`ProtocolErrorMiddleware` applies
/// them): the platform's errors from shared code get the Storage API's codes; an unknown route is
/// Supabase's "Route … not found"; anything unexpected is a 500 `InternalError`.
struct StorageErrors: ProtocolErrorVocabulary {
    func own(_ error: any Error) -> StorageError? { error as? StorageError }

    /// Kong's words for a missing or unknown key, which storage3 shows as the message.
    func failure(_ failure: ProjectResolver.Failure) -> StorageError {
        switch failure {
        case .noAPIKey: StorageError(.unauthorized, "AccessDenied", error: "Unauthorized", "No API key found in request")
        case .invalidAPIKey: StorageError(.unauthorized, "AccessDenied", error: "Unauthorized", "Invalid API key")
        case .hostMismatch: StorageError(.forbidden, "AccessDenied", error: "Unauthorized", "The API key belongs to another project than the host names.")
        }
    }

    func failure(_ error: APIError) -> StorageError {
        switch error.code {
        case "invalid_json", "validation_failed":
            StorageError.invalidRequest(error.message)
        case "payload_too_large":
            StorageError.tooLarge
        case "rate_limited":
            StorageError(.tooManyRequests, "SlowDown", error: "too_many_requests", error.message, headers: error.headers)
        default:
            StorageError(error.status, error.status.code >= 500 ? "DatabaseError" : "AccessDenied",
                         error: error.status.code >= 500 ? error.code : "Unauthorized", error.message, headers: error.headers)
        }
    }

    func failure(_ error: HTTPError) -> StorageError {
        if error.status == .notFound {
            return StorageError(.notFound, "InvalidRequest", error: "Not Found", "Route not found")
        }
        return StorageError(error.status, "InvalidRequest", error: error.status.reasonPhrase, error.status.reasonPhrase, headers: error.headers)
    }

    var unexpected: StorageError {
        StorageError(.internalServerError, "InternalError", error: "internal", "Internal Server Error")
    }
}
