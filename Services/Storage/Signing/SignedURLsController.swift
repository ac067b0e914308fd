import Contracts
import Crypto
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Signed URLs on `/storage/v1/object/…` (docs/protocols/storage-reference.md §4): links that
/// carry their own permission, for one object, until they expire, in the project's name.
///
/// | route | who | answer |
/// |---|---|---|
/// | `POST object/sign/{bucket}/{path}` `{"expiresIn"}` | a caller who may read the object | `{"signedURL":"/object/sign/…?token=…"}` |
/// | `POST object/sign/{bucket}` `{"expiresIn","paths"}` | the same, per path | `[{"path","signedURL","error"}]`, in order |
/// | `GET`/`HEAD object/sign/{bucket}/{path}?token=` | anyone with the link | the bytes, `Expires` in place of `Cache-Control` |
/// | `POST object/upload/sign/{bucket}/{path}` (`x-upsert`) | a caller who may write | `{"url":"/object/upload/sign/…?token=…","token"}`, for 2 hours |
/// | `PUT object/upload/sign/{bucket}/{path}?token=` | anyone with the link | `{"Key"}`: stored as the signer's user, upsert as signed |
///
/// A token is an HS256 JWS with the project's own key (`SignedURLToken`); one that was tampered
/// with, has expired, names another object or the other scope is 403.
struct SignedURLsController: Sendable {
    let access: StorageAccess
    let buckets: BucketStore
    let objects: ObjectStore
    let keys: SigningKeyStore
    let writer: ObjectWriter
    let download: ObjectDownload
    var now: @Sendable () -> Date = { Date() }

    /// How long a signed upload URL lasts: Supabase documents 2 hours.
    static let uploadLifetime: Int64 = 2 * 60 * 60
    /// The longest a signed download URL may last: about 10 years.
    static let longestLifetime: Int64 = 10 * 366 * 24 * 60 * 60

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post("/object/sign/:bucket/**", use: signOne)
        group.post("/object/sign/:bucket", use: signMany)
        group.get("/object/sign/:bucket/**", use: fetch)
        group.head("/object/sign/:bucket/**", use: fetch)
        group.post("/object/upload/sign/:bucket/**", use: signUpload)
        group.put("/object/upload/sign/:bucket/**", use: upload)
    }

    // MARK: Signing

    /// `expiresIn` as storage-js sends it (a number) or as storage3 does (a string).
    struct Lifetime: Decodable {
        var seconds: Int64

        init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer()
            if let number = try? value.decode(Int64.self) {
                seconds = number
            } else if let text = try? value.decode(String.self), let number = Int64(text.trimmingCharacters(in: .whitespaces)) {
                seconds = number
            } else {
                throw DecodingError.dataCorruptedError(in: value, debugDescription: "expiresIn must be a whole number of seconds")
            }
        }
    }

    struct SignRequest: Decodable {
        var expiresIn: Lifetime
    }

    struct SignManyRequest: Decodable {
        var expiresIn: Lifetime
        var paths: [String]
    }

    @Sendable func signOne(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        let input = try await request.decodeJSON(as: SignRequest.self, context: context)
        let lifetime = try Self.checked(input.expiresIn)
        let (bucket, name) = try await ObjectAddress.resolve(request, context, buckets: buckets, tenant: caller.tenant.id,
                                                             principal: caller.principal)
        guard let object = try await objects.object(name, bucket: bucket.id, tenant: caller.tenant.id),
              BucketPolicy.mayRead(object, in: bucket, by: caller.principal)
        else { throw StorageError.objectNotFound }
        let token = try await sign(.download, bucket: bucket.id, name: name, tenant: caller.tenant, lifetime: lifetime)
        return try jsonResponse(["signedURL": Self.link("/object/sign", bucket: bucket.id, name: name, token: token)])
    }

    /// One entry of a batch signing's answer.
    struct SignedPath: Encodable {
        var path: String
        var signedURL: String?
        var error: String?

        enum CodingKeys: String, CodingKey {
            case path, signedURL, error
        }

        /// Every key present, `null` where there is no value, as Supabase answers.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(path, forKey: .path)
            try container.encode(signedURL, forKey: .signedURL)
            try container.encode(error, forKey: .error)
        }
    }

    @Sendable func signMany(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        let input = try await request.decodeJSON(as: SignManyRequest.self, context: context)
        let lifetime = try Self.checked(input.expiresIn)
        guard (1...1000).contains(input.paths.count) else { throw StorageError.invalidRequest("body/paths must have 1 to 1000 names") }
        guard let id = BucketRules.fromPath(try context.parameters.require("bucket")),
              let bucket = try await buckets.bucket(id, tenant: caller.tenant.id),
              caller.principal != .anonymous || bucket.isPublic
        else { throw StorageError.bucketNotFound }
        // A name that could never be stored is answered as one that does not exist.
        let names = input.paths.map { try? ObjectName.valid($0) }
        let found = try await objects.objects(names.compactMap { $0 }, bucket: bucket.id, tenant: caller.tenant.id)
        let key = try await signingKey(caller.tenant)
        var answers: [SignedPath] = []
        for (path, name) in zip(input.paths, names) {
            guard let name, let object = found[name], BucketPolicy.mayRead(object, in: bucket, by: caller.principal) else {
                answers.append(SignedPath(path: path, error: "Either the object does not exist or you do not have access to it"))
                continue
            }
            let token = try sign(.download, bucket: bucket.id, name: name, tenant: caller.tenant, lifetime: lifetime, key: key)
            answers.append(SignedPath(path: path, signedURL: Self.link("/object/sign", bucket: bucket.id, name: name, token: token)))
        }
        return try jsonResponse(answers)
    }

    struct SignedUpload: Encodable {
        var url: String
        var token: String
    }

    @Sendable func signUpload(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard BucketPolicy.mayWrite(by: caller.principal) else { throw StorageError.accessDenied }
        let (bucket, name) = try await ObjectAddress.resolve(request, context, buckets: buckets, tenant: caller.tenant.id,
                                                             principal: caller.principal)
        let upsert = request.headers[ObjectsController.upsertField] == "true"
        // Refused now rather than when the link is used: an object in the way that the link could
        // never replace.
        if let existing = try await objects.object(name, bucket: bucket.id, tenant: caller.tenant.id) {
            if !upsert { throw StorageError.keyExists }
            if let user = caller.principal.userID, existing.owner != user { throw StorageError.accessDenied }
        }
        let token = try await sign(.upload, bucket: bucket.id, name: name, tenant: caller.tenant, lifetime: Self.uploadLifetime,
                                   owner: caller.principal.userID, upsert: upsert)
        return try jsonResponse(SignedUpload(url: Self.link("/object/upload/sign", bucket: bucket.id, name: name, token: token), token: token))
    }

    // MARK: Using a link

    @Sendable func fetch(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, token, bucketID, name) = try await verified(request, context, scope: .download)
        guard let found = try await objects.object(name, inBucket: bucketID, tenant: tenant.id) else { throw StorageError.bucketNotFound }
        guard let object = found.object else { throw StorageError.objectNotFound }
        return try await download.respond(object, tenant: tenant.id, request: request,
                                          expires: Date(timeIntervalSince1970: TimeInterval(token.expiresAt)))
    }

    @Sendable func upload(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, token, bucketID, name) = try await verified(request, context, scope: .upload)
        guard let bucket = try await buckets.bucket(bucketID, tenant: tenant.id) else { throw StorageError.bucketNotFound }
        let principal: StorageAccess.Principal = token.owner.map { .user($0) } ?? .service
        let object = try await writer.store(request, name: name, in: bucket, tenant: tenant.id, principal: principal,
                                            upsert: token.upsert ?? false)
        return try jsonResponse(["Key": bucket.id + "/" + object.name])
    }

    /// The project, the verified token, and the bucket id and object name a link's request names.
    private func verified(_ request: Request, _ context: PlatformRequestContext,
                          scope: SignedURLToken.Scope) async throws -> (RegisteredTenant, SignedURLToken, String, String) {
        guard let text = request.uri.queryParameters.get("token"), !text.isEmpty else {
            throw StorageError.invalidRequest("querystring must have required property 'token'")
        }
        let tenant = try await access.tenant(signedBy: text, request)
        let name = try ObjectName.fromRequest(path: request.uri.path, endpoint: context.endpointPath ?? "")
        guard let bucketID = BucketRules.fromPath(try context.parameters.require("bucket")) else { throw SignedURLToken.Refusal.wrongObject }
        let token = try SignedURLToken.verified(text, key: try await signingKey(tenant), now: now(), scope: scope,
                                                url: bucketID + "/" + name)
        return (tenant, token, bucketID, name)
    }

    // MARK: Helpers

    private func sign(_ scope: SignedURLToken.Scope, bucket: String, name: String, tenant: RegisteredTenant, lifetime: Int64,
                      owner: UUID? = nil, upsert: Bool? = nil) async throws -> String {
        try sign(scope, bucket: bucket, name: name, tenant: tenant, lifetime: lifetime, owner: owner, upsert: upsert,
                 key: try await signingKey(tenant))
    }

    private func sign(_ scope: SignedURLToken.Scope, bucket: String, name: String, tenant: RegisteredTenant, lifetime: Int64,
                      owner: UUID? = nil, upsert: Bool? = nil, key: SymmetricKey) throws -> String {
        let issued = Int64(now().timeIntervalSince1970)
        return try SignedURLToken(url: bucket + "/" + name, scope: scope, project: tenant.slug, owner: owner, upsert: upsert,
                                  issuedAt: issued, expiresAt: issued + lifetime).signed(with: key)
    }

    private func signingKey(_ tenant: RegisteredTenant) async throws -> SymmetricKey {
        guard let key = try await keys.key(tenant: tenant.id) else {
            throw StorageError(.notFound, "TenantNotFound", error: "not_found", "The project's storage is gone.")
        }
        return key
    }

    private static func checked(_ lifetime: Lifetime) throws -> Int64 {
        guard (1...longestLifetime).contains(lifetime.seconds) else {
            throw StorageError.invalidRequest("body/expiresIn must be from 1 to \(longestLifetime) seconds")
        }
        return lifetime.seconds
    }

    /// The link relative to `/storage/v1`, the name unencoded as Supabase returns it (storage-js
    /// encodes the whole URL; storage3 copes with either).
    static func link(_ route: String, bucket: String, name: String, token: String) -> String {
        route + "/" + bucket + "/" + name + "?token=" + token
    }
}
