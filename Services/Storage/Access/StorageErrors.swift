import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// The Storage API's words for every error on `/storage/v1/` (`ProtocolErrorMiddleware` applies
/// them): the platform's errors from shared code get the Storage API's codes; an unknown route is
/// Supabase's "Route … not found"; anything unexpected is a 500 `InternalError`.
struct StorageErrors: ProtocolErrorVocabulary {
    /// Storage's own errors, and what its parts throw, in the Storage API's words.
    func own(_ error: any Error) -> StorageError? {
        switch error {
        case let error as StorageError:
            return error
        case let refusal as ObjectStore.Refusal:
            switch refusal {
            case .exists: return .keyExists
            case .notOwner: return .accessDenied
            case .quota: return .quotaExceeded
            case .noBucket: return .bucketNotFound
            case .notFound: return .objectNotFound
            }
        case let error as UploadBodyError:
            switch error {
            case .noFile: return .invalidRequest("No content provided")
            case .metadataTooLarge: return StorageError(.contentTooLarge, "EntityTooLarge", error: "Payload too large", "The user metadata is too large")
            case .fieldTooLarge(let field): return StorageError(.contentTooLarge, "EntityTooLarge", error: "Payload too large", "The form field \(field) is too large")
            case .malformed(let reason): return .invalidRequest(reason)
            case .truncated: return .invalidRequest("The upload ended before its multipart body did")
            case .alreadyConsumed: return nil
            }
        case let refusal as SignedURLToken.Refusal:
            // A departure: 403 where Supabase answers 400 with the same codes (§12).
            switch refusal {
            case .malformed: return StorageError(.forbidden, "InvalidJWT", "Invalid Compact JWS")
            case .badSignature: return StorageError(.forbidden, "InvalidJWT", "signature verification failed")
            case .expired: return StorageError(.forbidden, "InvalidJWT", #""exp" claim timestamp check failed"#)
            case .wrongScope(let scope): return StorageError(.forbidden, "InvalidSignature", "Token is not scoped for \(scope.rawValue)")
            case .wrongObject: return StorageError(.forbidden, "InvalidSignature", "Invalid signature")
            }
        case is ObjectFiles.NotFound:
            // A row whose bytes are missing: the consistency check's to repair.
            return StorageError(.notFound, "NoSuchKey", error: "Not found", "The resource was not found", headers: [.cacheControl: "no-store"])
        case is ObjectFiles.NoTenantDirectory, is BucketStore.NoTenant:
            return StorageError(.notFound, "TenantNotFound", error: "not_found", "The project's storage is gone.")
        case let error as ObjectFiles.SystemCallError where error.code == ENOSPC || error.code == EDQUOT:
            return StorageError(HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "InsufficientStorage", error: "insufficient_storage", "The storage is full.")
        default:
            return nil
        }
    }

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
        case "validation_failed" where Self.keyFields.contains(error.field?.split(separator: ".").first.map(String.init) ?? ""):
            // An object name in a JSON body (a NUL, say) is refused as it is in a URL.
            StorageError(.unprocessableContent, "InvalidKey", "Invalid key: \(error.message)")
        case "invalid_json", "validation_failed":
            StorageError.invalidRequest(error.message)
        case "payload_too_large":
            StorageError.tooLarge
        case "rate_limited":
            StorageError(.tooManyRequests, "SlowDown", error: "too_many_requests", error.message, headers: error.headers)
        case _ where error.status.code >= 500:
            // `database_unavailable` is the Storage API's DatabaseError; auth out of reach and the rest its InternalError.
            StorageError(error.status, error.code.hasPrefix("database") ? "DatabaseError" : "InternalError", error: error.code, error.message,
                         headers: error.headers)
        default:
            StorageError(error.status, "AccessDenied", error: "Unauthorized", error.message, headers: error.headers)
        }
    }

    func failure(_ error: HTTPError) -> StorageError {
        if error.status == .notFound {
            return StorageError(.notFound, "InvalidRequest", error: "Not Found", "Route not found")
        }
        return StorageError(error.status, "InvalidRequest", error: error.status.reasonPhrase, error.status.reasonPhrase, headers: error.headers)
    }

    /// The JSON fields that hold object names.
    static let keyFields: Set<String> = ["sourceKey", "destinationKey", "prefixes", "paths"]

    var unexpected: StorageError {
        StorageError(.internalServerError, "InternalError", error: "internal", "Internal Server Error")
    }
}
