import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// S3's words for every error on `/storage/v1/s3` (`ProtocolErrorMiddleware` applies them): the
/// Storage API's errors keep their code, message and status (its codes are S3's vocabulary
/// already: `NoSuchKey`, `EntityTooLarge`, …) and become XML; the platform's become S3's; what
/// is unexpected is a 500 `InternalError`, its details in the log only.
struct S3Errors: ProtocolErrorVocabulary {
    func own(_ error: any Error) -> S3Error? {
        switch error {
        case let error as S3Error:
            return error
        case let failure as SigV4.Failure:
            switch failure {
            case .missing: return .missingSignature
            case .malformed(let reason): return S3Error(.badRequest, "AuthorizationHeaderMalformed", reason)
            }
        case let failure as AWSChunkedDecoder.Failure:
            switch failure {
            case .signature: return .signatureMismatch
            case .checksum: return S3Error(.badRequest, "BadDigest", "The CRC32 you specified did not match the calculated checksum.")
            case .malformed(let reason): return S3Error(.badRequest, "IncompleteBody", reason)
            }
        case let malformed as S3XML.Malformed:
            return .malformedXML(malformed.reason)
        case is ObjectFiles.InvalidRange:
            // A copy's range past the bytes on disk (the row said more).
            return S3Error(.rangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
        default:
            guard let storage = StorageErrors().own(error) else { return nil }
            return Self.s3(storage)
        }
    }

    /// A Storage API error as S3 says it.
    static func s3(_ error: StorageError) -> S3Error {
        S3Error(error.status, error.code, error.message, headers: error.headers)
    }

    func failure(_ failure: ProjectResolver.Failure) -> S3Error {
        // Not used by S3's routes (they name the project by their signature), kept complete.
        S3Error(failure.status, "AccessDenied", "Access Denied")
    }

    func failure(_ error: APIError) -> S3Error {
        switch error.code {
        case "payload_too_large": S3Error(.contentTooLarge, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        case "rate_limited": S3Error(.serviceUnavailable, "SlowDown", error.message, headers: error.headers)
        case "database_unavailable": S3Error(.serviceUnavailable, "ServiceUnavailable", error.message, headers: error.headers)
        default: S3Error(error.status, error.status.code >= 500 ? "InternalError" : "InvalidRequest", error.message, headers: error.headers)
        }
    }

    func failure(_ error: HTTPError) -> S3Error {
        switch error.status {
        case .notFound: S3Error(.notFound, "NoSuchKey", "Route not found")
        case .methodNotAllowed: S3Error(.methodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.",
                                        headers: error.headers)
        case .contentTooLarge: S3Error(.contentTooLarge, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        default: S3Error(error.status, "InvalidRequest", error.status.reasonPhrase, headers: error.headers)
        }
    }

    var unexpected: S3Error {
        S3Error(.internalServerError, "InternalError", "We encountered an internal error. Please try again.")
    }
}
