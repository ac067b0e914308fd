import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// `PUT` / `DELETE /internal/v1/tenants/{id}/api-keys`: provisioning stores a tenant's API keys
/// (hashes only) and revokes them when it compensates or deprovisions.
/// `GET /internal/v1/api-keys/{sha256}`: realtime and storage ask whose active key this is
/// (200 `APIKeyIdentity`, or 404 when unknown or revoked).
///
/// - `PUT` → 201 + the stored `APIKeySet` when stored; 200 when this exact set is already active;
///   409 `keys_exist` when a different set is active (or a key id or hash was stored before);
///   404 `not_found` when the tenant is not registered; 422 for an invalid set.
/// - `DELETE` → 204, also when there were no active keys (or no such tenant).
///
/// A rotation (provisioning's `rotate_keys` workflow) adds its next set beside the active one
/// and later retires the old one by id:
/// - `PUT /internal/v1/tenants/{id}/api-keys/next` → 201 stored (both sets active now), 200 when
///   this set is already active, 409 `keys_exist` when two sets are active already (or a key id
///   or hash was stored before), 404, 422 — the same answers as `PUT …/api-keys`.
/// - `POST /internal/v1/tenants/{id}/api-keys/revoke {key_ids}` → 204, also when they were
///   revoked already.
struct APIKeysController: Sendable {
    let store: APIKeyStore

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.put("/v1/tenants/:id/api-keys") { request, context in
            try await storeSet(request, context) { set, tenantID in try await store.store(set, tenantID: tenantID) }
        }
        group.put("/v1/tenants/:id/api-keys/next") { request, context in
            try await storeSet(request, context) { set, tenantID in try await store.storeNext(set, tenantID: tenantID) }
        }
        group.post("/v1/tenants/:id/api-keys/revoke") { request, context in
            let tenantID = try TenantRegistryController.tenantID(context)
            let input = try await request.decodeJSON(as: RevokeAPIKeysRequest.self, context: context)
            guard (1...16).contains(input.keyIds.count) else {
                throw APIError.validation(field: "key_ids", "Name 1 to 16 keys to revoke.")
            }
            let revoked = try await store.revoke(keyIDs: input.keyIds, tenantID: tenantID)
            if revoked > 0 {
                context.logger.info("tenant api keys revoked", metadata: [
                    "tenant.id": "\(tenantID.uuidString.lowercased())", "api_key.count": "\(revoked)",
                ])
            }
            return Response(status: .noContent)
        }
        // Realtime and storage check a presented key by its hash (they cache the answer).
        group.get("/v1/api-keys/:sha256") { _, context in
            let sha256 = try context.parameters.require("sha256")
            guard sha256.utf8.count == 64, sha256.utf8.allSatisfy(\.isLowercaseHexDigit) else {
                throw APIError.validation(field: "sha256", "The key hash must be 64 lowercase hexadecimal digits (SHA-256).")
            }
            guard let identity = try await store.identity(sha256: sha256) else { throw APIError.notFound("API key") }
            return try jsonResponse(identity)
        }
        group.delete("/v1/tenants/:id/api-keys") { _, context in
            let tenantID = try TenantRegistryController.tenantID(context)
            let revoked = try await store.revokeAll(tenantID: tenantID)
            if revoked > 0 {
                context.logger.info("tenant api keys revoked", metadata: [
                    "tenant.id": "\(tenantID.uuidString.lowercased())", "api_key.count": "\(revoked)",
                ])
            }
            return Response(status: .noContent)
        }
    }

    /// A `PUT` of a key set: validated, stored by `operation`, answered with the tenant's
    /// active keys (201 when stored now, 200 when it was already active).
    private func storeSet(_ request: Request, _ context: PlatformRequestContext,
                       _ operation: (APIKeySet, UUID) async throws -> APIKeyStore.Outcome) async throws -> Response {
        let tenantID = try TenantRegistryController.tenantID(context)
        let set = try await request.decodeJSON(as: APIKeySet.self, context: context)
        try set.validate()
        let outcome: APIKeyStore.Outcome
        do {
            outcome = try await operation(set, tenantID)
        } catch let failure as APIKeyStore.Failure {
            switch failure {
            case .tenantNotFound:
                throw APIError.notFound("tenant")
            case .differentSetActive:
                throw APIError.conflict(code: "keys_exist", "The tenant already has a different set of active API keys; revoke them first.")
            case .keyAlreadyUsed:
                throw APIError.conflict(code: "keys_exist", "A key with this id or hash was stored before; mint new keys.")
            }
        }
        if case .stored = outcome {
            context.logger.info("tenant api keys stored", metadata: [
                "tenant.id": "\(tenantID.uuidString.lowercased())",
                "api_key.ids": "\(set.keys.map { $0.id.uuidString.lowercased() }.joined(separator: ","))",
            ])
        }
        let active = APIKeySet(keys: try await store.activeKeys(tenantID: tenantID))
        return try jsonResponse(active, status: outcome == .stored ? .created : .ok)
    }
}

extension APIKeySet {
    /// Exactly one publishable and one secret key, distinct ids and hashes, each hash 64
    /// lowercase hex digits, each prefix 1 to 16 printable ASCII characters (keys are
    /// `pk_…`/`sk_…`; a few characters to recognise one by, never the whole key).
    func validate() throws {
        let kinds = keys.map(\.kind)
        guard keys.count == 2, kinds.contains(.publishable), kinds.contains(.secret) else {
            throw APIError.validation(field: "keys", "Exactly one publishable and one secret key are required.")
        }
        for (index, key) in keys.enumerated() {
            guard key.sha256.utf8.count == 64, key.sha256.utf8.allSatisfy(\.isLowercaseHexDigit) else {
                throw APIError.validation(field: "keys.\(index).sha256", "The hash must be 64 lowercase hexadecimal digits (SHA-256).")
            }
            guard (1...16).contains(key.prefix.utf8.count), key.prefix.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw APIError.validation(field: "keys.\(index).prefix", "The prefix must be 1 to 16 printable ASCII characters.")
            }
        }
        guard keys[0].id != keys[1].id, keys[0].sha256 != keys[1].sha256 else {
            throw APIError.validation(field: "keys", "The keys must have distinct ids and hashes.")
        }
    }
}

extension UInt8 {
    var isLowercaseHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
    }
}
