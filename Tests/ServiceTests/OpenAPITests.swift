@testable import Auth
import Contracts
import Foundation
import HTTPClient
@testable import Storage
import TestSupport
import Testing

/// Each service's OpenAPI document (`Services/<Name>/openapi.json`): well-formed OpenAPI 3.1,
/// in agreement with the service's router in both directions, and with the Contracts types.
/// (schemathesis checks the real answers against it: `deploy/scripts/fuzz.sh`.)
@Suite("OpenAPI documents", .serialized)
struct OpenAPITests {
    static let services = TestPlatform.names

    // MARK: Well-formed

    /// Routes under this prefix speak Supabase's GoTrue protocol (auth's `GoTrue/`): their errors
    /// are GoTrue's (`GoTrueError`), not the platform's `Error`.
    static let goTruePrefix = "/auth/v1/"
    /// Routes under this prefix speak Supabase's Storage API (storage's `Buckets/`, `Objects/`):
    /// their errors are its `StorageError`, and they take the key and bearer as it does.
    static let storagePrefix = "/storage/v1/"
    static let realtimePrefix = "/realtime/v1/"
    static let realtimeSocket = "/realtime/v1/websocket"
    static let storageSchemes: Set<String> = ["StorageApiKey", "StorageApiKeyQuery", "StorageBearer"]
    /// Routes under this prefix speak S3 (storage's `S3/`): signed with SigV4, their errors S3's
    /// XML (`S3Error`).
    static let s3Prefix = "/storage/v1/s3"
    static let s3Schemes: Set<String> = ["S3SigV4", "S3Presigned"]

    @Test("each document is well-formed OpenAPI 3.1: references resolve, path parameters are declared, errors have the error shape (GoTrue's under /auth/v1/, the Storage API's under /storage/v1/)", arguments: services)
    func wellFormed(service: String) throws {
        let document = try OpenAPIDocumentFile(service: service)
        #expect(document.version?.hasPrefix("3.1") == true, "\(service): openapi is \(document.version ?? "missing")")
        let info = document.root["info"] as? [String: Any]
        #expect(info?["title"] as? String == service)
        #expect(info?["version"] is String)
        #expect(!document.paths.isEmpty)

        for reference in document.references {
            #expect(document.resolve(reference.target) != nil, "\(service): \(reference.at) points at \(reference.target), which does not exist")
        }
        // And every component is used (security schemes are used by name, not by reference).
        let referenced = Set(document.references.map(\.target))
        for (kind, entries) in document.root["components"] as? [String: Any] ?? [:] where kind != "securitySchemes" {
            for name in (entries as? [String: Any] ?? [:]).keys {
                #expect(referenced.contains("#/components/\(kind)/\(name)"), "\(service): #/components/\(kind)/\(name) is never used")
            }
        }

        let schemes = Set(((document.root["components"] as? [String: Any])?["securitySchemes"] as? [String: Any] ?? [:]).keys)
        var operationIDs = Set<String>()
        for (path, method, operation, item) in document.operationObjects {
            let name = "\(service): \(method.uppercased()) \(path)"
            #expect(path.hasPrefix("/"), "\(name): paths start with /")

            if let id = operation["operationId"] as? String {
                #expect(operationIDs.insert(id).inserted, "\(name): operationId \(id) is used twice")
            } else {
                Issue.record("\(name): no operationId")
            }

            // Every {name} in the path is a declared path parameter, and every path parameter is in the path.
            let templated = Set(path.split(separator: "/").filter { $0.hasPrefix("{") && $0.hasSuffix("}") }.map { String($0.dropFirst().dropLast()) })
            let parameters = ((item["parameters"] as? [Any] ?? []) + (operation["parameters"] as? [Any] ?? [])).compactMap(document.dereferenced)
            let declared = Set(parameters.filter { $0["in"] as? String == "path" }.compactMap { $0["name"] as? String })
            #expect(templated == declared, "\(name): path template names \(templated.sorted()) but declares \(declared.sorted())")
            for parameter in parameters where parameter["in"] as? String == "path" {
                #expect(parameter["required"] as? Bool == true, "\(name): path parameter \(parameter["name"] ?? "?") must be required")
            }

            // Security names defined schemes; an explicit `security` on every operation.
            guard let security = operation["security"] as? [[String: Any]] else {
                Issue.record("\(name): no security (use [] for none)")
                continue
            }
            for requirement in security {
                for scheme in requirement.keys { #expect(schemes.contains(scheme), "\(name): unknown security scheme \(scheme)") }
            }
            if path.hasPrefix("/internal/") {
                #expect(security.count == 1 && security.first?.keys.contains("ServiceToken") == true,
                        "\(name): internal routes take the service token")
            }

            // GoTrue's routes: every one says which error shape it wants (the API version header).
            let goTrue = path.hasPrefix(Self.goTruePrefix)
            if goTrue {
                #expect(parameters.contains { $0["in"] as? String == "header" && $0["name"] as? String == "X-Supabase-Api-Version" },
                        "\(name): GoTrue's routes declare the X-Supabase-Api-Version header")
                #expect(!security.contains { $0.keys.contains("ApiKey") }, "\(name): GoTrue's routes take the key as GoTrue does, not the platform's ApiKey")
            }
            // The Storage API's routes: the key and bearer as Supabase's Storage takes them, nothing else.
            let s3 = path == Self.s3Prefix || path.hasPrefix(Self.s3Prefix + "/")
            let storage = path.hasPrefix(Self.storagePrefix) && !s3
            if s3 {
                #expect(!security.isEmpty && security.allSatisfy { Set($0.keys).isSubset(of: Self.s3Schemes) },
                        "\(name): S3's routes take only \(Self.s3Schemes.sorted())")
            } else if storage {
                #expect(!security.isEmpty && security.allSatisfy { Set($0.keys).isSubset(of: Self.storageSchemes) },
                        "\(name): the Storage API's routes take only \(Self.storageSchemes.sorted())")
            } else {
                #expect(!security.contains { !Set($0.keys).isDisjoint(with: Self.storageSchemes) }, "\(name): the Storage API's schemes are for /storage/v1/ alone")
            }

            // Responses: at least one 2xx (none only for GoTrue's features that are not enabled,
            // marked `x-not-enabled`); every 4xx/5xx is the error shape as JSON: GoTrue's under
            // /auth/v1/, the Storage API's under /storage/v1/, the platform's everywhere else.
            guard let responses = operation["responses"] as? [String: Any], !responses.isEmpty else {
                Issue.record("\(name): no responses")
                continue
            }
            #expect(responses["default"] == nil, "\(name): no `default` response (it would accept any status)")
            let notEnabled = operation["x-not-enabled"] as? Bool == true
            #expect(!notEnabled || goTrue, "\(name): only GoTrue's routes may be marked x-not-enabled")
            // The websocket's success is its upgrade, 101.
            #expect(responses.keys.contains { $0.hasPrefix("2") || (path == Self.realtimeSocket && $0 == "101") } != notEnabled,
                    notEnabled ? "\(name): x-not-enabled, yet a 2xx response" : "\(name): no 2xx response")
            let realtime = path.hasPrefix(Self.realtimePrefix)
            let errorSchema = goTrue ? "#/components/schemas/GoTrueError" : s3 ? "#/components/schemas/S3Error"
                : storage ? "#/components/schemas/StorageError"
                : path == Self.realtimeSocket ? "#/components/schemas/RealtimeHandshakeError"
                : realtime ? "#/components/schemas/RealtimeError" : "#/components/schemas/Error"
            let errorType = s3 ? "application/xml" : "application/json"
            for (status, response) in responses {
                #expect(Int(status) != nil, "\(name): status \(status) is not a number")
                guard let code = Int(status), code >= 400 else { continue }
                let schema = document.dereferenced(response).flatMap { ($0["content"] as? [String: Any])?[errorType] as? [String: Any] }?["schema"] as? [String: Any]
                #expect(schema?["$ref"] as? String == errorSchema, "\(name): \(status) is not \(errorType) with the \(errorSchema.split(separator: "/").last ?? "") schema")
            }
        }

        // The error schema is the platform's one shape.
        let error = try #require(document.resolve("#/components/schemas/Error"))
        #expect(try document.validate(Self.json(ErrorEnvelope(code: "not_found", message: "No.")), against: error).isEmpty)
        #expect(try document.validate(Self.json(ErrorEnvelope(code: "validation_failed", message: "No.", field: "slug")), against: error).isEmpty)
        #expect(!document.validate(["error": ["code": "x"]], against: error).isEmpty)

        // The Storage API's error (storage only): four strings, the status among them; never the platform's.
        if document.paths.keys.contains(where: { $0.hasPrefix(Self.storagePrefix) }) {
            let storageError = try #require(document.resolve("#/components/schemas/StorageError"))
            let missing: [String: Any] = ["statusCode": "404", "code": "NoSuchKey", "error": "not_found", "message": "Object not found"]
            #expect(document.validate(missing, against: storageError).isEmpty, "\(service): StorageError refuses \(missing)")
            let numeric: [String: Any] = ["statusCode": 404, "code": "NoSuchKey", "error": "not_found", "message": "Object not found"]
            let noError: [String: Any] = ["statusCode": "404", "code": "NoSuchKey", "message": "Object not found"]
            let platform: [String: Any] = ["error": ["code": "not_found", "message": "No."]]
            for invalid in [numeric, noError, platform] {
                #expect(!document.validate(invalid, against: storageError).isEmpty, "\(service): StorageError accepts \(invalid)")
            }
        }

        // Supabase Realtime's errors (realtime only): `{"message"}` on its HTTP API, `{"error"}`
        // for a refused upgrade; never the platform's.
        if document.paths.keys.contains(where: { $0.hasPrefix(Self.realtimePrefix) }) {
            let realtimeError = try #require(document.resolve("#/components/schemas/RealtimeError"))
            let handshakeError = try #require(document.resolve("#/components/schemas/RealtimeHandshakeError"))
            #expect(document.validate(["message": "Unauthorized"], against: realtimeError).isEmpty)
            #expect(document.validate(["error": "API key is missing"], against: handshakeError).isEmpty)
            let platform: [String: Any] = ["error": ["code": "not_found", "message": "No."]]
            #expect(!document.validate(platform, against: realtimeError).isEmpty && !document.validate(platform, against: handshakeError).isEmpty)
        }

        // GoTrue's error, in both shapes (auth only), and never the platform's.
        guard document.paths.keys.contains(where: { $0.hasPrefix(Self.goTruePrefix) }) else { return }
        let goTrueError = try #require(document.resolve("#/components/schemas/GoTrueError"))
        let current: [String: Any] = ["code": "invalid_credentials", "message": "Invalid login credentials"]
        let legacy: [String: Any] = ["code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"]
        let weak: [String: Any] = ["code": "weak_password", "message": "Too short.", "weak_password": ["reasons": ["length"]]]
        let weakLegacy: [String: Any] = ["code": 422, "error_code": "weak_password", "msg": "Too short.", "weak_password": ["reasons": ["pwned"]]]
        for valid in [current, legacy, weak, weakLegacy] {
            #expect(document.validate(valid, against: goTrueError).isEmpty, "\(service): GoTrueError refuses \(valid)")
        }
        let mixed: [String: Any] = ["code": 400, "message": "Invalid login credentials"]
        let platform: [String: Any] = ["error": ["code": "invalid_credentials", "message": "No."]]
        let noReasons: [String: Any] = ["code": "weak_password", "message": "Too short.", "weak_password": [String: Any]()]
        for invalid in [mixed, platform, noReasons] {
            #expect(!document.validate(invalid, against: goTrueError).isEmpty, "\(service): GoTrueError accepts \(invalid)")
        }
    }

    // MARK: Router ↔ document

    @Test("every route of every running service is in its document, every documented operation is routed, and /openapi.json serves the repository's file")
    func routesMatchDocuments() async throws {
        try await withTestPlatform { platform, _ in
            for service in Self.services {
                let base = platform.url(service)
                let file = try Data(contentsOf: OpenAPIDocumentFile.url(service: service))

                // Served without credentials, exactly the file in the repository.
                let served = try await platform.client.execute(HTTPClientRequest(url: base + "/openapi.json"))
                #expect(served.status == 200, "\(service): GET /openapi.json answered \(served.status)")
                #expect(served.headers["Content-Type"]?.hasPrefix("application/json") == true)
                #expect(served.body == Array(file), "\(service): /openapi.json is not Services/…/openapi.json as committed (rebuild?)")
                let document = try OpenAPIDocumentFile(name: service, bytes: Data(served.body))

                // The route list needs the service token.
                let anonymous = try await platform.client.execute(HTTPClientRequest(url: base + "/internal/v1/routes"))
                #expect(anonymous.status == 401)
                let listed = try await platform.client.execute(HTTPClientRequest(url: base + "/internal/v1/routes", headers: platform.tokenHeaders))
                #expect(listed.status == 200)
                let routes = try listed.decode(ServiceRoutes.self)
                #expect(routes.service == service)
                #expect(!routes.routes.isEmpty)

                let routed = Set(routes.routes.map { "\($0.method) \($0.path)" })
                let documented = document.operations
                for missing in routed.subtracting(documented).sorted() {
                    Issue.record("\(service): the route \(missing) is not in Services/\(service)/openapi.json")
                }
                for extra in documented.subtracting(routed).sorted() {
                    Issue.record("\(service): Services/\(service)/openapi.json documents \(extra), which no route serves")
                }
            }
        }
    }

    // MARK: Contracts ↔ document

    /// Encodes as the services do (`jsonResponse`: ISO-8601 dates, sorted keys).
    static func json(_ value: some Encodable) throws -> Any {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return try JSONSerialization.jsonObject(with: encoder.encode(value), options: .fragmentsAllowed)
    }

    /// `value`, fully populated, validates against the schema and has exactly its properties.
    static func check(_ document: OpenAPIDocumentFile, _ schemaName: String, _ value: some Encodable, allKeys: Bool = true,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = "#/components/schemas/" + schemaName
        guard let schema = document.resolve(reference) else {
            Issue.record("\(document.name): \(reference) is missing", sourceLocation: sourceLocation)
            return
        }
        let encoded = try json(value)
        for problem in document.validate(encoded, against: schema) {
            Issue.record("\(document.name): \(schemaName): \(problem)", sourceLocation: sourceLocation)
        }
        if allKeys, let object = encoded as? [String: Any] {
            let keys = Set(object.keys), properties = document.propertyNames(of: schema)
            #expect(keys == properties, "\(document.name): \(schemaName) declares \(properties.sorted()) but the type encodes \(keys.sorted())",
                    sourceLocation: sourceLocation)
        }
    }

    static let now = Date(timeIntervalSince1970: 1_750_000_000)
    static let user = TenantUser(id: UUID(), email: "ada@example.com", role: "authenticated", metadata: .object(["plan": .string("pro")]),
                                 appMetadata: .object(["tier": .string("gold")]), createdAt: now, updatedAt: now, lastSignInAt: now,
                                 bannedUntil: now)
    static let keys = APIKeySet(keys: [
        APIKeyHash(id: UUID(), kind: .publishable, prefix: "pk_abcd", sha256: String(repeating: "a", count: 64)),
        APIKeyHash(id: UUID(), kind: .secret, prefix: "sk_abcd", sha256: String(repeating: "b", count: 64)),
    ])

    @Test("auth's schemas describe exactly what the Contracts types encode")
    func authContracts() throws {
        let document = try OpenAPIDocumentFile(service: "auth")
        let developer = DeveloperProfile(id: UUID(), email: "dev@example.com", createdAt: Self.now)
        try Self.check(document, "Error", ErrorEnvelope(code: "slug_taken", message: "Taken.", field: "slug"))
        try Self.check(document, "HealthStatus", HealthStatus(status: "ready", service: "auth", checks: ["database": "ok"]))
        try Self.check(document, "ServiceRoutes", ServiceRoutes(service: "auth", routes: [ServiceRoute(method: "GET", path: "/health")]))
        try Self.check(document, "RegisterRequest", RegisterRequest(email: "dev@example.com", password: "correct horse battery", projectName: "My App",
                                                                    slug: "my_app", inviteToken: "inv_x"))
        try Self.check(document, "RegisterAccepted", ProjectAccepted(developerId: UUID(), projectId: UUID(), workflowId: UUID(), slug: "my_app",
                                                                     status: .pending, statusUrl: "http://127.0.0.1:8082/v1/projects/x"))
        try Self.check(document, "PasswordGrant", PasswordGrant(email: "dev@example.com", password: "secret"))
        try Self.check(document, "RefreshGrant", RefreshGrant(refreshToken: "rt"))
        try Self.check(document, "GrantRequest", PasswordGrant(email: "dev@example.com", password: "secret"), allKeys: false)
        try Self.check(document, "DeveloperProfile", developer)
        try Self.check(document, "DeveloperTokens", TokenResponse(accessToken: "a.b.c", expiresIn: 900, refreshToken: "rt", user: developer))
        try Self.check(document, "InviteRequest", InviteRequest(email: "new@example.com"))
        try Self.check(document, "Invite", Invite(id: UUID(), email: "new@example.com", inviteToken: "inv_x", expiresAt: Self.now))
        try Self.check(document, "TenantRegistration", TenantRegistration(slug: "my_app", schema: "tenant_my_app", role: "tenant_my_app"))
        try Self.check(document, "RegisteredTenant", RegisteredTenant(id: UUID(), slug: "my_app", schema: "tenant_my_app", role: "tenant_my_app",
                                                                      createdAt: Self.now, updatedAt: Self.now))
        try Self.check(document, "APIKeySet", Self.keys)
        try Self.check(document, "APIKeyHash", Self.keys.keys[0])
        try Self.check(document, "APIKeyIdentity", APIKeyIdentity(keyId: UUID(), tenantId: UUID(), slug: "my_app", kind: .secret))
        try Self.check(document, "RevokeAPIKeysRequest", RevokeAPIKeysRequest(keyIds: [UUID(), UUID()]))
        try Self.check(document, "ActiveAPIKeys", APIKeySet(keys: Self.keys.keys + Self.keys.keys))
        try Self.check(document, "TenantSignup", TenantSignup(email: "ada@example.com", password: "correct horse battery", metadata: .emptyObject))
        try Self.check(document, "TenantUser", Self.user)
        try Self.check(document, "TenantTokens", TenantTokenResponse(accessToken: "a.b.c", expiresIn: 900, refreshToken: "rt", user: Self.user))
        try Self.check(document, "TenantUserUpdate", TenantUserUpdate(email: "ada@example.com", password: "correct horse battery", metadata: .emptyObject))
        try Self.check(document, "AdminUserCreate", AdminUserCreate(email: "ada@example.com", password: "correct horse battery", role: "editor",
                                                                    metadata: .emptyObject))
        try Self.check(document, "AdminUserUpdate", AdminUserUpdate(email: "ada@example.com", password: "correct horse battery", role: "editor",
                                                                    metadata: .emptyObject, banSeconds: 60))
        try Self.check(document, "TenantUserPage", TenantUserPage(users: [Self.user], page: 1, perPage: 50, total: 1, totalEstimated: false, nextCursor: "eyJ9"))
        let entry = AuditEntry(id: 1, seq: 1, occurredAt: Self.now, actor: "user:x", action: "user.signed_up", target: "x",
                               details: .object(["via": .string("secret_key:x")]), prevHash: "00", hash: "ff")
        try Self.check(document, "AuditEntry", entry)
        try Self.check(document, "AuditPage", AuditPage(entries: [entry], nextAfterSeq: 1))
        try Self.check(document, "AuditVerification", AuditVerification(valid: false, entries: 3, firstBrokenId: 2, checked: 2, reason: "chain_broken"))
        try Self.check(document, "RotatedSigningKey", RotatedSigningKey(kid: "2f1c"))
        // Optional fields left out still validate (they are absent, never null).
        try Self.check(document, "TenantUser", TenantUser(id: UUID(), email: "a@example.com", role: "authenticated", metadata: .emptyObject,
                                                          createdAt: Self.now, updatedAt: Self.now, lastSignInAt: nil, bannedUntil: nil), allKeys: false)
        try Self.check(document, "AuditPage", AuditPage(entries: [], nextAfterSeq: nil), allKeys: false)
    }

    @Test("auth's GoTrue schemas describe exactly what the GoTrue types of /auth/v1/ encode")
    func goTrueContracts() throws {
        let document = try OpenAPIDocumentFile(service: "auth")
        let user = GoTrueUser(Self.user)
        try Self.check(document, "GoTrueUser", user)
        try Self.check(document, "GoTrueIdentity", GoTrueUser.Identity(user: Self.user))
        // A user who never signed in and is not banned: the optional fields are absent, never null.
        let fresh = TenantUser(id: UUID(), email: "new@example.com", role: "authenticated", metadata: .emptyObject,
                               createdAt: Self.now, updatedAt: Self.now, lastSignInAt: nil, bannedUntil: nil)
        try Self.check(document, "GoTrueUser", GoTrueUser(fresh), allKeys: false)
        try Self.check(document, "GoTrueIdentity", GoTrueUser.Identity(user: fresh), allKeys: false)
        let issued = TokenIssuer.Issued(account: Self.user, session: UUID(), accessToken: "a.b.c", refreshToken: "rt",
                                        expiresIn: 900, expiresAt: 1_750_000_900)
        try Self.check(document, "GoTrueSession", GoTrueSession(issued))
        try Self.check(document, "GoTrueUserList", GoTrueUserList(users: [user], aud: GoTrueUser.audience), allKeys: false)
        try Self.check(document, "GoTrueUserList", GoTrueUserList(users: [user], aud: GoTrueUser.audience,
                                                                  pagination: .init(nextCursor: "eyJ9", hasMore: true)))
        try Self.check(document, "GoTrueSettings", GoTrueSettings())
        try Self.check(document, "JWKS", PublicKeySet(keys: [.init(kid: "2f1c", x: "x", y: "y")]))
        try Self.check(document, "GoTrueEmpty", JSONValue.emptyObject)
    }

    @Test("provisioning's schemas describe exactly what the Contracts types encode")
    func provisioningContracts() throws {
        let document = try OpenAPIDocumentFile(service: "provisioning")
        try Self.check(document, "Error", ErrorEnvelope(code: "not_retryable", message: "No."))
        try Self.check(document, "HealthStatus", HealthStatus(status: "ok", service: "provisioning", checks: [:]))
        try Self.check(document, "CreateProjectRequest", CreateProjectRequest(ownerId: UUID(), name: "My App", slug: "my_app"))
        try Self.check(document, "ProjectAccepted", ProjectAccepted(projectId: UUID(), workflowId: UUID(), slug: "my_app", status: .pending,
                                                                    statusUrl: "http://127.0.0.1:8082/v1/projects/x"))
        let step = StepStatus(name: "register_auth", status: "failed", attempts: 2, lastError: "503", startedAt: Self.now, finishedAt: Self.now)
        try Self.check(document, "StepStatus", step)
        let workflow = WorkflowStatus(id: UUID(), kind: "provision", status: "succeeded", attempt: 1, startedAt: Self.now, finishedAt: Self.now,
                                      error: "none", steps: [step])
        try Self.check(document, "WorkflowStatus", workflow)
        let ready = ProjectStatus(id: UUID(), slug: "my_app", name: "My App", ownerId: UUID(), status: .ready,
                                  isActive: true, createdAt: Self.now, updatedAt: Self.now, workflow: workflow)
        try Self.check(document, "ProjectStatus", ready)
        let listed = ProjectStatus(id: UUID(), slug: "my_app", name: "My App", ownerId: UUID(), status: .pending,
                                   isActive: false, createdAt: Self.now, updatedAt: Self.now, workflow: nil)
        try Self.check(document, "ProjectStatus", listed, allKeys: false)
        try Self.check(document, "ProjectList", ProjectList(projects: [listed], nextCursor: listed.id))
        try Self.check(document, "ProjectList", ProjectList(projects: [], nextCursor: nil), allKeys: false)
        try Self.check(document, "NewProjectRequest", NewProjectRequest(name: "My App", slug: "my_app", ownerId: UUID()))
        let key = ProjectAPIKey(id: UUID(), kind: .secret, prefix: "sk_abcdefghi", createdAt: Self.now, key: "sk_x", state: .retiring,
                                retiresAt: Self.now)
        try Self.check(document, "RotateKeysRequest", RotateKeysRequest(graceSeconds: 60))
        try Self.check(document, "ProjectAPIKey", key)
        try Self.check(document, "ProjectAPIKeys", ProjectAPIKeys(keys: [key]))
        try Self.check(document, "ProjectAPIKey", ProjectAPIKey(id: UUID(), kind: .publishable, prefix: "pk_abcdefghi", createdAt: Self.now, key: nil),
                       allKeys: false)
        for state in ProjectState.allCases {
            try Self.check(document, "ProjectState", state, allKeys: false)
        }
        for event in WebhookEvent.allCases {
            try Self.check(document, "WebhookEvent", event, allKeys: false)
        }
        try Self.check(document, "NewWebhookRequest", NewWebhookRequest(url: "https://example.com/hook", events: [.projectReady], ownerId: UUID()))
        let endpoint = WebhookEndpoint(id: UUID(), ownerId: UUID(), url: "https://example.com/hook", events: WebhookEvent.allCases,
                                       secret: "whsec_c2VjcmV0", createdAt: Self.now, disabledAt: Self.now, disabledReason: "50 deliveries in a row failed")
        try Self.check(document, "WebhookEndpoint", endpoint)
        var listedEndpoint = endpoint
        listedEndpoint.secret = nil
        listedEndpoint.disabledAt = nil
        listedEndpoint.disabledReason = nil
        try Self.check(document, "WebhookEndpoint", listedEndpoint, allKeys: false)
        try Self.check(document, "WebhookEndpointList", WebhookEndpointList(webhooks: [listedEndpoint]))
        let delivery = WebhookDelivery(id: UUID(), eventType: .projectFailed, projectId: UUID(), status: .pending, attempts: 3, lastStatus: 500,
                                       lastError: "The endpoint answered HTTP 500.", nextAttemptAt: Self.now, createdAt: Self.now, deliveredAt: Self.now)
        try Self.check(document, "WebhookDelivery", delivery)
        try Self.check(document, "WebhookDeliveryList", WebhookDeliveryList(deliveries: [delivery]))
        try Self.check(document, "WebhookDelivery", WebhookDelivery(id: UUID(), eventType: .projectReady, projectId: UUID(), status: .delivered,
                                                                    attempts: 1, lastStatus: nil, lastError: nil, nextAttemptAt: nil,
                                                                    createdAt: Self.now, deliveredAt: nil), allKeys: false)
    }

    @Test("storage's Storage API schemas describe exactly what the answers of /storage/v1/ encode")
    func storageAPIContracts() throws {
        let document = try OpenAPIDocumentFile(service: "storage")
        let bucket = Bucket(id: "avatars", name: "avatars", isPublic: true, userAccess: .authenticatedRead, fileSizeLimit: 10_000_000,
                            allowedMimeTypes: ["image/*"], createdAt: Self.now, updatedAt: Self.now)
        try Self.check(document, "StorageBucket", bucket)
        // No limits: the keys are present and null, as storage3 needs them.
        try Self.check(document, "StorageBucket", Bucket(id: "docs", name: "docs", isPublic: false, userAccess: .owner, fileSizeLimit: nil,
                                                         allowedMimeTypes: nil, createdAt: Self.now, updatedAt: Self.now))
        let object = StoredObject(id: UUID(), bucketID: "avatars", name: "folder/a.png", owner: UUID(), version: UUID(), size: 7,
                                  contentType: "image/png", cacheControl: "max-age=3600", sha256: String(repeating: "a", count: 64),
                                  userMetadata: .object(["plan": .string("pro")]), createdAt: Self.now, updatedAt: Self.now, lastAccessedAt: Self.now)
        var uploadedByService = object
        uploadedByService.owner = nil
        uploadedByService.userMetadata = nil
        for stored in [object, uploadedByService] {
            try Self.check(document, "StorageObjectInfo", ObjectInfo(stored))
            try Self.check(document, "StorageListEntry", ListEntry(name: "a.png", object: stored))
            try Self.check(document, "StorageRemovedObject", RemovedObject(stored))
            try Self.check(document, "StorageObjectMetadata", stored.systemMetadata)
        }
        try Self.check(document, "StorageListEntry", ListEntry(name: "folder", object: nil))
        var listing = ObjectListing.Page()
        listing.objects = [object]
        listing.commonPrefixes = ["folder/sub/"]
        try Self.check(document, "StorageListV2Answer", ListV2Answer(listing))
        listing.isTruncated = true
        listing.next = ObjectListing.Cursor(key: "folder/a.png", inclusive: false)
        try Self.check(document, "StorageListV2Answer", ListV2Answer(listing))
        try Self.check(document, "StorageBucketName", ["name": "avatars"])
        try Self.check(document, "StorageMessage", ["message": "Successfully updated"])
        try Self.check(document, "StorageObjectKey", ["Id": object.id.uuidString.lowercased(), "Key": "avatars/folder/a.png"])
        try Self.check(document, "StorageSignedURL", ["signedURL": "/object/sign/avatars/folder/a.png?token=t"])
        try Self.check(document, "StorageSignedPath", SignedURLsController.SignedPath(path: "a.png", signedURL: "/object/sign/avatars/a.png?token=t"))
        try Self.check(document, "StorageSignedPath", SignedURLsController.SignedPath(path: "b.png", error: "Either the object does not exist or you do not have access to it"))
        try Self.check(document, "StorageSignedUpload", SignedURLsController.SignedUpload(url: "/object/upload/sign/avatars/a.png?token=t", token: "t"))
        try Self.check(document, "StorageSignedUploadKey", ["Key": "avatars/folder/a.png"])
        var tenantReport = ConsistencyCheck.TenantReport(tenant: UUID().uuidString.lowercased())
        try Self.check(document, "ConsistencyTenantReport", tenantReport)
        tenantReport.filesWithoutRows = [UUID().uuidString.lowercased()]
        tenantReport.rowsWithoutFiles = [.init(bucket: "avatars", name: "a.png", version: UUID().uuidString.lowercased())]
        tenantReport.staleUploads = [UUID().uuidString.lowercased()]
        tenantReport.usage = .init(recorded: 10, actual: 7)
        try Self.check(document, "ConsistencyReport", ConsistencyCheck.Report(repaired: true, tenants: [tenantReport], tenantsChecked: 3,
                                                                              directoriesWithoutTenants: [UUID().uuidString.lowercased()]))
        for error in [StorageError.objectNotFound, .bucketNotFound, .keyExists, .tooLarge, .invalidMimeType("x"), .accessDenied, StorageErrors().unexpected] {
            try Self.check(document, "StorageError", ["statusCode": String(error.status.code), "code": error.code, "error": error.error, "message": error.message])
        }
    }

    @Test("realtime's and storage's schemas describe exactly what the Contracts types encode", arguments: ["realtime", "storage"])
    func tenantServiceContracts(service: String) throws {
        let document = try OpenAPIDocumentFile(service: service)
        try Self.check(document, "Error", ErrorEnvelope(code: "tenant_mismatch", message: "No."))
        try Self.check(document, "HealthStatus", HealthStatus(status: "ready", service: service, checks: ["database": "ok"]))
        try Self.check(document, "ServiceRoutes", ServiceRoutes(service: service, routes: []))
        try Self.check(document, "TenantRegistration", TenantRegistration(slug: "my_app", schema: "tenant_my_app", role: "tenant_my_app"))
        try Self.check(document, "RegisteredTenant", RegisteredTenant(id: UUID(), slug: "my_app", schema: "tenant_my_app", role: "tenant_my_app",
                                                                      createdAt: Self.now, updatedAt: Self.now))
        let limits = service == "storage" ? ["quota_bytes": 1_073_741_824]
            : ["max_concurrent_users": 200, "max_events_per_second": 100, "max_channels_per_client": 100, "max_joins_per_second": 100]
        try Self.check(document, "TenantLimits", TenantLimits(slug: "my_app", limits: limits))
        #expect(Set(limits.keys) == document.propertyNames(of: document.resolve("#/components/schemas/TenantLimits/properties/limits") as Any),
                "\(service): the documented limits are not the ones the service keeps")
        if service == "realtime" {
            try Self.check(document, "RealtimeTables", RealtimeTables(slug: "my_app", tables: ["todos"]))
        }
    }
}
