import Contracts
import Crypto
import Foundation
import HTTPClient
import Postgres
import ServiceClients
import ServiceKit
import TenantKit
import TestSupport
import Testing

/// The tenant registry that provisioning's saga calls on auth, realtime and storage
/// (`/internal/v1/tenants/{id}`), through each service's router, and auth's API-key store,
/// against the real executable (whose log the test reads).
@Suite("Tenant registry", .serialized)
struct TenantRegistryTests {
    static let services = ["auth", "realtime", "storage"]

    @Test("PUT creates then updates, GET reads, DELETE removes; token, validation, slug clash and concurrent PUTs", arguments: services)
    func registryContract(name: String) async throws {
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await withScratchDatabase { url in
            try await withRouterTest(try #require(ServiceName(rawValue: name)), environment: ["DATABASE_URL": url, "STORAGE_ROOT": root]) { router in
                let api = InternalAPI(router: router)
                let id = UUID()
                let slug = TestDatabase.uniqueName("acme")
                let path = "/internal/v1/tenants/\(id.uuidString.lowercased())"

                // Created, then the same again: 201, 200, one row.
                let created = try await api.call(.put, path, json: registration(slug))
                #expect(created.status == 201, "\(created)")
                let first = try created.decode(RegisteredTenant.self)
                #expect(first.id == id && first.slug == slug && first.schema == "tenant_\(slug)" && first.role == "tenant_\(slug)")
                let again = try await api.call(.put, path, json: registration(slug))
                #expect(again.status == 200)
                #expect(try again.decode(RegisteredTenant.self) == first)
                #expect(try await rowCount(url, name, id) == 1)

                // New slug, schema and role: updated in place.
                let renamed = TestDatabase.uniqueName("renamed")
                let updated = try await api.call(.put, path, json: registration(renamed))
                #expect(updated.status == 200)
                let record = try updated.decode(RegisteredTenant.self)
                #expect(record.id == id && record.slug == renamed && record.schema == "tenant_\(renamed)" && record.role == "tenant_\(renamed)")
                #expect(record.createdAt == first.createdAt)
                #expect(try await rowCount(url, name, id) == 1)

                let read = try await api.call(.get, path)
                #expect(read.status == 200)
                #expect(try read.decode(RegisteredTenant.self) == record)

                // The service token is required, and must be the right one.
                let anonymous = try await api.call(.put, path, json: registration(renamed), token: nil)
                #expect(anonymous.status == 401 && anonymous.errorEnvelope?.error.code == "unauthorized")
                let wrongToken = try await api.call(.get, path, token: "not-the-service-token-at-all")
                #expect(wrongToken.status == 403 && wrongToken.errorEnvelope?.error.code == "forbidden")

                // Bad input: 422 naming the field, or 400 for malformed JSON; never a 500.
                let badSlug = try await api.call(.put, path, json: TenantRegistration(slug: "Bad-Slug", schema: "tenant_Bad-Slug", role: "tenant_Bad-Slug"))
                #expect(badSlug.status == 422 && badSlug.errorEnvelope?.error.field == "slug")
                let shortSlug = try await api.call(.put, path, json: registration("ab"))
                #expect(shortSlug.status == 422 && shortSlug.errorEnvelope?.error.field == "slug")
                let badSchema = try await api.call(.put, path, json: TenantRegistration(slug: renamed, schema: "public", role: "public"))
                #expect(badSchema.status == 422 && badSchema.errorEnvelope?.error.field == "schema")
                let badRole = try await api.call(.put, path, json: TenantRegistration(slug: renamed, schema: "tenant_\(renamed)", role: ""))
                #expect(badRole.status == 422 && badRole.errorEnvelope?.error.field == "role")
                let badID = try await api.call(.put, "/internal/v1/tenants/not-a-uuid", json: registration(renamed))
                #expect(badID.status == 422 && badID.errorEnvelope?.error.field == "id")
                let badGetID = try await api.call(.get, "/internal/v1/tenants/12345")
                #expect(badGetID.status == 422 && badGetID.errorEnvelope?.error.field == "id")
                let malformed = try await api.call(.put, path, body: Array(#"{"slug": "acme", "#.utf8))
                #expect(malformed.status == 400 && malformed.errorEnvelope?.error.code == "invalid_json")
                let missingField = try await api.call(.put, path, body: Array(#"{"slug":"acme_one"}"#.utf8))
                #expect(missingField.status == 422 && missingField.errorEnvelope?.error.field == "schema")

                // Another id with this slug: 409, and the holder is unchanged.
                let other = "/internal/v1/tenants/\(UUID().uuidString.lowercased())"
                let clash = try await api.call(.put, other, json: registration(renamed))
                #expect(clash.status == 409 && clash.errorEnvelope?.error.code == "slug_taken", "\(clash)")
                #expect(try await api.call(.get, path).decode(RegisteredTenant.self) == record)
                #expect(try await api.call(.get, other).status == 404)

                // Removed, then gone.
                let deleted = try await api.call(.delete, path)
                #expect(deleted.status == 204 && deleted.body.isEmpty)
                let deletedAgain = try await api.call(.delete, path)
                #expect(deletedAgain.status == 404 && deletedAgain.errorEnvelope?.error.code == "not_found")
                let gone = try await api.call(.get, path)
                #expect(gone.status == 404 && gone.errorEnvelope?.error.code == "not_found")
                #expect(try await rowCount(url, name, id) == 0)
                // The slug is free again for another id.
                #expect(try await api.call(.put, other, json: registration(renamed)).status == 201)

                // 20 concurrent first PUTs of one id: one 201, nineteen 200, one row.
                let racing = UUID()
                let racingSlug = TestDatabase.uniqueName("race")
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<20 {
                        group.addTask {
                            try await api.call(.put, "/internal/v1/tenants/\(racing.uuidString.lowercased())", json: registration(racingSlug)).status
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == 201 }.count == 1, "\(statuses)")
                #expect(statuses.filter { $0 == 200 }.count == 19, "\(statuses)")
                #expect(try await rowCount(url, name, racing) == 1)
            }
        }
    }

    @Test("storage makes the tenant's directory on PUT (again when it was removed) and removes it on DELETE; new tenants get the default quota")
    func storageDirectories() async throws {
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await withScratchDatabase { url in
            let environment = ["DATABASE_URL": url, "STORAGE_ROOT": root, "STORAGE_DEFAULT_QUOTA_BYTES": "5000"]
            try await withRouterTest(.storage, environment: environment) { router in
                let api = InternalAPI(router: router)
                let id = UUID()
                let path = "/internal/v1/tenants/\(id.uuidString.lowercased())"
                let directory = root + "/" + id.uuidString.lowercased()
                let slug = TestDatabase.uniqueName("files")

                #expect(try await api.call(.put, path, json: registration(slug)).status == 201)
                #expect(isDirectory(directory))
                try await withPool(url: url) { pool in
                    let quota = try await pool.query("SELECT quota_bytes FROM storage.tenants WHERE id = \(id)").single()
                    #expect(try quota.decode("quota_bytes", as: Int.self) == 5000)
                }

                // Removed by hand: the next PUT brings it back.
                try FileManager.default.removeItem(atPath: directory)
                #expect(!isDirectory(directory))
                #expect(try await api.call(.put, path, json: registration(slug)).status == 200)
                #expect(isDirectory(directory))

                // DELETE removes it with whatever it holds.
                try Data("hello".utf8).write(to: URL(fileURLWithPath: directory + "/object.txt"))
                #expect(try await api.call(.delete, path).status == 204)
                #expect(!FileManager.default.fileExists(atPath: directory))
                // A missing directory does not stop a DELETE.
                #expect(try await api.call(.put, path, json: registration(slug)).status == 201)
                try FileManager.default.removeItem(atPath: directory)
                #expect(try await api.call(.delete, path).status == 204)
            }
        }
    }

    @Test("TenantLookup remembers a found tenant for its ttl (a row removed meanwhile is still answered), never a missing one, and with no ttl reads every time")
    func lookupCache() async throws {
        let root = temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await withScratchDatabase { url in
            try await withRouterTest(.storage, environment: ["DATABASE_URL": url, "STORAGE_ROOT": root]) { router in
                let api = InternalAPI(router: router)
                let (id, slug) = (UUID(), TestDatabase.uniqueName("cached"))
                try await withPool(url: url) { pool in
                    let registry = TenantRegistry(pool: pool, schema: "storage")
                    let remembering = TenantLookup(registry: registry, ttl: .seconds(3600))
                    let reading = TenantLookup(registry: registry, ttl: .zero)
                    #expect(try await remembering.tenant(slug: slug) == nil)
                    #expect(try await api.call(.put, "/internal/v1/tenants/\(id.uuidString.lowercased())", json: registration(slug)).status == 201)
                    // Not found before is not remembered: the new tenant is seen at once.
                    #expect(try await remembering.tenant(slug: slug)?.id == id)
                    try await pool.query("DELETE FROM storage.tenants WHERE id = \(id)")
                    #expect(try await remembering.tenant(slug: slug)?.id == id)
                    #expect(try await reading.tenant(slug: slug) == nil)
                }
            }
        }
    }

    @Test("auth stores a tenant's API keys as hashes only: 201, 200 for the same set, 409 for another, revocation, cascade, 404, 422")
    func authAPIKeys() async throws {
        try await withScratchDatabase { url in
            // A real process: the test reads what the executable logs (never a key).
            try await withService("auth", environment: ["DATABASE_URL": url]) { service, client in
                let api = InternalAPI(client: client, base: service.baseURL)
                let id = UUID()
                let tenantPath = "/internal/v1/tenants/\(id.uuidString.lowercased())"
                let keysPath = tenantPath + "/api-keys"
                #expect(try await api.call(.put, tenantPath, json: registration(TestDatabase.uniqueName("keys"))).status == 201)

                let minted = MintedKeys()
                let stored = try await api.call(.put, keysPath, json: minted.set)
                #expect(stored.status == 201, "\(stored)")
                #expect(sorted(try stored.decode(APIKeySet.self).keys) == sorted(minted.set.keys))
                let repeated = try await api.call(.put, keysPath, json: minted.set)
                #expect(repeated.status == 200)
                #expect(sorted(try repeated.decode(APIKeySet.self).keys) == sorted(minted.set.keys))
                // The same keys in the other order are the same set.
                #expect(try await api.call(.put, keysPath, json: APIKeySet(keys: minted.set.keys.reversed())).status == 200)

                let other = MintedKeys()
                let replaced = try await api.call(.put, keysPath, json: other.set)
                #expect(replaced.status == 409 && replaced.errorEnvelope?.error.code == "keys_exist")

                // Only hashes: the table has no column that could hold a key, the stored hashes
                // are the ones sent, and no stored value is a whole key.
                try await withPool(url: url) { pool in
                    let columns = try await pool.query("""
                        SELECT column_name FROM information_schema.columns
                        WHERE table_schema = 'auth' AND table_name = 'api_keys' ORDER BY column_name
                        """).map { try $0.decode("column_name", as: String.self) }
                    #expect(columns == ["created_at", "id", "kind", "prefix", "revoked_at", "sha256", "tenant_id"])
                    let rows = try await pool.query("SELECT kind, sha256, prefix, row_to_json(k)::text AS everything FROM auth.api_keys k WHERE tenant_id = \(id)")
                    #expect(rows.count == 2)
                    for row in rows {
                        let kind = try row.decode("kind", as: String.self)
                        let key = kind == "publishable" ? minted.publishable : minted.secret
                        #expect(try row.decode("sha256", as: String.self) == sha256Hex(key))
                        #expect(try key.hasPrefix(row.decode("prefix", as: String.self)))
                        let everything = try row.decode("everything", as: String.self)
                        #expect(!everything.contains(minted.publishable) && !everything.contains(minted.secret))
                    }
                }
                #expect(!service.log.contains(minted.publishable) && !service.log.contains(minted.secret))

                // Invalid sets: 422 naming the field.
                let twoPublishable = APIKeySet(keys: [minted.set.keys[0], APIKeyHash(id: UUID(), kind: .publishable, prefix: "pk_x", sha256: sha256Hex("pk_x"))])
                let invalid = try await api.call(.put, keysPath, json: twoPublishable)
                #expect(invalid.status == 422 && invalid.errorEnvelope?.error.field == "keys")
                var badHash = other.set
                badHash.keys[1].sha256 = String(repeating: "A", count: 64)
                let uppercaseHash = try await api.call(.put, keysPath, json: badHash)
                #expect(uppercaseHash.status == 422 && uppercaseHash.errorEnvelope?.error.field == "keys.1.sha256")
                var longPrefix = other.set
                longPrefix.keys[0].prefix = other.publishable
                let wholeKeyAsPrefix = try await api.call(.put, keysPath, json: longPrefix)
                #expect(wholeKeyAsPrefix.status == 422 && wholeKeyAsPrefix.errorEnvelope?.error.field == "keys.0.prefix")
                let malformed = try await api.call(.put, keysPath, body: Array("{\"keys\": [".utf8))
                #expect(malformed.status == 400)

                // Unknown tenant: 404.
                let unknown = try await api.call(.put, "/internal/v1/tenants/\(UUID().uuidString.lowercased())/api-keys", json: MintedKeys().set)
                #expect(unknown.status == 404 && unknown.errorEnvelope?.error.code == "not_found")
                let noToken = try await api.call(.put, keysPath, json: minted.set, token: nil)
                #expect(noToken.status == 401)

                // Revoked: no active key is left; the revoked set cannot come back, a new one can.
                #expect(try await api.call(.delete, keysPath).status == 204)
                #expect(try await activeKeys(url, id) == 0)
                #expect(try await api.call(.delete, keysPath).status == 204)
                let revived = try await api.call(.put, keysPath, json: minted.set)
                #expect(revived.status == 409 && revived.errorEnvelope?.error.code == "keys_exist")
                #expect(try await api.call(.put, keysPath, json: other.set).status == 201)
                #expect(try await activeKeys(url, id) == 2)

                // Deregistering the tenant removes its keys.
                #expect(try await api.call(.delete, tenantPath).status == 204)
                try await withPool(url: url) { pool in
                    let left = try await pool.query("SELECT count(*)::int8 AS n FROM auth.api_keys WHERE tenant_id = \(id)").single()
                    #expect(try left.decode("n", as: Int.self) == 0)
                }
                #expect(try await api.call(.delete, keysPath).status == 204)
                #expect(try await api.call(.put, keysPath, json: MintedKeys().set).status == 404)
            }
        }
    }
}

// MARK: - Helpers

/// Calls a service's internal API with the service token (or another, or none).
/// The internal routes, through the router (in-process) or over HTTP to a process.
private struct InternalAPI: Sendable {
    let send: @Sendable (HTTPMethod, String, HTTPClientHeaders, [UInt8]?) async throws -> HTTPClientResponse

    init(router: RouterClient) {
        send = { method, path, headers, body in try await router.execute(method, path, headers: headers, body: body) }
    }

    init(client: CurlHTTPClient, base: String) {
        send = { method, path, headers, body in
            try await client.execute(HTTPClientRequest(method: method, url: base + path, headers: headers, body: body))
        }
    }

    func call(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, token: String? = TestServices.internalToken
    ) async throws -> HTTPClientResponse {
        var headers: HTTPClientHeaders = ["Content-Type": "application/json"]
        if let token { headers.add(name: PlatformHeader.serviceToken, value: token) }
        return try await send(method, path, headers, body)
    }

    func call(
        _ method: HTTPMethod, _ path: String, json: some Encodable, token: String? = TestServices.internalToken
    ) async throws -> HTTPClientResponse {
        try await call(method, path, body: Array(try JSONEncoder().encode(json)), token: token)
    }
}

/// Starts `name`, waits until it is ready, runs `body`, and stops it (exit status 0 expected).
private func withService(
    _ name: String,
    environment: [String: String],
    _ body: (ServiceProcess, CurlHTTPClient) async throws -> Void
) async throws {
    let service = try ServiceProcess(name, environment: environment)
    let client = try TestServices.client()
    do {
        try await service.waitUntil()
        try await body(service, client)
    } catch {
        await client.shutdown()
        await service.stop()
        Issue.record("\(name) log:\n\(service.logTail())")
        throw error
    }
    await client.shutdown()
    let status = await service.stop()
    #expect(status == 0, "exit status after SIGTERM; log:\n\(service.logTail())")
}

private func registration(_ slug: String) -> TenantRegistration {
    TenantRegistration(slug: slug, schema: "tenant_\(slug)", role: "tenant_\(slug)")
}

private func rowCount(_ url: String, _ schema: String, _ id: UUID) async throws -> Int {
    try await withPool(url: url) { pool in
        try await pool.query("SELECT count(*)::int8 AS n FROM \(identifier: schema).tenants WHERE id = \(id)").single().decode("n", as: Int.self)
    }
}

private func activeKeys(_ url: String, _ id: UUID) async throws -> Int {
    try await withPool(url: url) { pool in
        try await pool.query("SELECT count(*)::int8 AS n FROM auth.api_keys WHERE tenant_id = \(id) AND revoked_at IS NULL")
            .single().decode("n", as: Int.self)
    }
}

/// A fresh folder path under the temporary directory (not created: storage creates it).
private func temporaryRoot() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("platform-storage-\(UUID().uuidString.lowercased())").path
}

private func isDirectory(_ path: String) -> Bool {
    var directory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
}

/// A key pair as provisioning mints it, and the hashes it sends to auth.
private struct MintedKeys {
    let publishable = "pk_" + randomToken()
    let secret = "sk_" + randomToken()
    let publishableID = UUID()
    let secretID = UUID()

    var set: APIKeySet {
        APIKeySet(keys: [
            APIKeyHash(id: publishableID, kind: .publishable, prefix: String(publishable.prefix(10)), sha256: sha256Hex(publishable)),
            APIKeyHash(id: secretID, kind: .secret, prefix: String(secret.prefix(10)), sha256: sha256Hex(secret)),
        ])
    }
}

private func randomToken() -> String {
    (0..<2).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }.joined()
}

private func sha256Hex(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

private func sorted(_ keys: [APIKeyHash]) -> [APIKeyHash] {
    keys.sorted { $0.id.uuidString < $1.id.uuidString }
}
