import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// Who calls `/storage/v1/s3`: the project one of its S3 access keys belongs to, proven by the
/// request's SigV4 signature (docs/protocols/storage-reference.md §8.4), acting as the project
/// itself (every bucket of it, as its secret key does; no other project's: the key names its
/// project, the path names only buckets).
///
/// | request | answer |
/// |---|---|
/// | no signature | 403 `AccessDenied` "Missing signature" |
/// | not SigV4 as S3 clients write it, or a scope service other than `s3` | 400 `AuthorizationHeaderMalformed` |
/// | an unknown or revoked key | 403 `InvalidAccessKeyId` |
/// | `X-Amz-Date` more than 15 minutes from now (header form) | 403 `RequestTimeTooSkewed` |
/// | a presigned URL past `X-Amz-Date + X-Amz-Expires` | 403 `AccessDenied` "Request has expired" |
/// | any other signature than the one the key gives | 403 `SignatureDoesNotMatch` |
///
/// The region is the client's own (any string is accepted and signed with, as §8.1
/// recommends). The host signed is the one the client addressed: the `Host` header, or behind a
/// trusted proxy (`TRUSTED_PROXIES`, the gateway, which passes `Host` without its port) its
/// `X-Forwarded-Host`. The path is the raw one received, `/storage/v1/s3` included, as the
/// gateway passes it unchanged.
struct S3Access: Sendable {
    let credentials: S3CredentialStore
    let registry: TenantRegistry
    let proxies: TrustedProxies

    static let maximumSkew: TimeInterval = 15 * 60

    struct Caller: Sendable {
        var tenant: RegisteredTenant
        var request: SigV4.Request
        var signature: SigV4.Signature
        var signingKey: SymmetricKey
    }

    func caller(_ request: Request, context: PlatformRequestContext, now: Date = Date()) async throws -> Caller {
        let signed = Self.signed(request)
        let signature = try SigV4.signature(of: signed)
        guard signature.service == "s3" else { throw SigV4.Failure.malformed("The credential's service must be s3.") }
        guard let date = SigV4.date(signature.amzDate) else { throw SigV4.Failure.malformed("X-Amz-Date is malformed.") }
        if let expires = signature.expires {
            guard date.timeIntervalSince(now) <= Self.maximumSkew else { throw S3Error.skewed }
            guard now.timeIntervalSince(date) <= TimeInterval(expires) else { throw S3Error.expired }
        } else {
            guard abs(now.timeIntervalSince(date)) <= Self.maximumSkew else { throw S3Error.skewed }
        }
        // Key ids are hex; anything else (a NUL from a presigned URL's query, say) is unknown
        // without asking the database.
        guard (1...128).contains(signature.accessKeyID.utf8.count),
              signature.accessKeyID.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }),
              let key = try await credentials.active(accessKeyID: signature.accessKeyID)
        else {
            throw S3Error.invalidAccessKey
        }
        let signingKey = SigV4.signingKey(secret: key.secret, signature)
        let canonical = SigV4.canonicalRequest(signed, signature, host: host(request, context: context))
        let expected = SigV4.sign(SigV4.stringToSign(signature, canonicalRequest: canonical), key: signingKey)
        guard SigV4.constantTimeEquals(expected, signature.signature) else {
            context.logger.info("S3 signature mismatch", metadata: ["s3.access_key": "\(signature.accessKeyID)"])
            throw S3Error.signatureMismatch
        }
        // A key outlives nothing: its tenant's removal cascades to it.
        guard let tenant = try await registry.tenant(id: key.tenant) else { throw S3Error.invalidAccessKey }
        return Caller(tenant: tenant, request: signed, signature: signature, signingKey: signingKey)
    }

    /// The request as the signature covers it.
    static func signed(_ request: Request) -> SigV4.Request {
        let path = request.uri.path
        let query = request.uri.query
        var headers: [(name: String, value: String)] = []
        for field in request.headers { headers.append((field.name.canonicalName, field.value)) }
        return SigV4.Request(method: request.method.rawValue, path: path, query: query, headers: headers)
    }

    static let forwardedHost = HTTPField.Name("X-Forwarded-Host")!

    /// The host the client addressed.
    func host(_ request: Request, context: PlatformRequestContext) -> String {
        if proxies.isTrusted(context.clientAddress), let forwarded = request.headers[Self.forwardedHost], !forwarded.isEmpty {
            return forwarded
        }
        return request.head.authority ?? ""
    }
}
