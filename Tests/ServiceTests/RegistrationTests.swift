import Contracts
import Foundation
import HTTPClient
import Passwords
import Postgres
import ServiceClients
import TestSupport
import Testing

/// `POST /v1/register` on auth, through provisioning, on the four real executables.
@Suite("Registration", .serialized)
struct RegistrationTests {
    func register(_ platform: TestPlatform, email: String, password: String = "correct horse battery", name: String = "My App", slug: String?,
                  from address: String? = nil) async throws -> HTTPClientResponse {
        let body = try JSONEncoder().encode(RegisterRequest(email: email, password: password, projectName: name, slug: slug))
        var headers = HTTPClientHeaders([("Content-Type", "application/json")])
        if let address { headers.add(name: "X-Forwarded-For", value: address) }
        return try await platform.client.execute(HTTPClientRequest(
            method: .post, url: platform.url("auth") + "/v1/register", headers: headers, body: Array(body)
        ))
    }

    @Test("register → 202 with ids and a status URL → the project becomes ready; the password is stored as argon2id only")
    func registerToReady() async throws {
        try await withTestPlatform(.processes) { platform, url in
            let email = TestDatabase.uniqueName("dev") + "@example.test"
            let slug = TestDatabase.uniqueName("reg")
            let response = try await register(platform, email: email, slug: slug)
            #expect(response.status == 202, "\(String(decoding: response.body, as: UTF8.self))")
            let accepted = try response.decode(ProjectAccepted.self)
            let developer = try #require(accepted.developerId)
            #expect(accepted.slug == slug && accepted.status == .pending)
            #expect(accepted.statusUrl.hasSuffix("/v1/projects/" + accepted.projectId.uuidString.lowercased()))
            let ready = try await platform.waitForProject(accepted.projectId, in: [.ready, .failed])
            #expect(ready.status == .ready && ready.ownerId == developer)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let hash = try await pool.query("SELECT password_hash FROM auth.developers WHERE id = \(developer)").single()
                    .decode("password_hash", as: String.self)
                #expect(hash.hasPrefix("$argon2id$v=19$m=19456,t=2,p=1$"))
                #expect(!hash.contains("correct horse"))
            }
        }
    }

    @Test("a slug is derived from the project name when none is given")
    func derivedSlug() async throws {
        try await withTestPlatform { platform, _ in
            let name = "Shop " + TestDatabase.uniqueName("x")
            let response = try await register(platform, email: TestDatabase.uniqueName("d") + "@example.test", name: name, slug: nil)
            #expect(response.status == 202)
            #expect(try response.decode(ProjectAccepted.self).slug == ProjectSlug.derive(from: name))
        }
    }

    @Test("invalid input is 422 naming the field; a taken email or slug is 409; nothing half-made remains")
    func validationAndConflicts() async throws {
        try await withTestPlatform { platform, url in
            let cases: [(String, String, String?, String)] = [
                ("not-an-email", "correct horse battery", "ok_slug", "email"),
                ("a@b", "correct horse battery", "ok_slug", "email"),
                ("dev@example.test", "short", "ok_slug", "password"),
                ("dev@example.test", "correct horse battery", "Bad Slug!", "slug"),
            ]
            for (email, password, slug, field) in cases {
                let response = try await register(platform, email: email, password: password, slug: slug)
                #expect(response.status == 422 && response.errorEnvelope?.error.field == field, "\(field)")
            }
            let malformed = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("auth") + "/v1/register", body: Array("{".utf8)))
            #expect(malformed.status == 400)

            let email = TestDatabase.uniqueName("dev") + "@example.test"
            let slug = TestDatabase.uniqueName("taken")
            #expect(try await register(platform, email: email, slug: slug).status == 202)
            let sameEmail = try await register(platform, email: email.uppercased(), slug: TestDatabase.uniqueName("other"))
            #expect(sameEmail.status == 409 && sameEmail.errorEnvelope?.error.code == "email_taken")
            let otherEmail = TestDatabase.uniqueName("dev2") + "@example.test"
            let sameSlug = try await register(platform, email: otherEmail, slug: slug)
            #expect(sameSlug.status == 409 && sameSlug.errorEnvelope?.error.code == "slug_taken")
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.developers WHERE email_normalized = \(otherEmail)") == 0)
            }
        }
    }

    /// The common-password list auth ships, read from the source tree (the Auth module is an
    /// executable, so tests reach its `PasswordPolicy` through HTTP only).
    static func shippedCommonPasswords() throws -> [String] {
        let file = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Shared/Passwords/Resources/common-passwords.txt")
        return try String(contentsOf: file, encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init)
    }

    @Test("a password on the shipped common list (any case, padded, its last long entry) or the email as password: 422 on password, no developer")
    func commonPasswordsAndEmail() async throws {
        let list = try Self.shippedCommonPasswords()
        #expect(Set(list).count >= 10_000, "the shipped list has \(Set(list).count) distinct entries")
        #expect(list.contains("qwerty123456"))
        // The last entry long enough to pass the length check: refusing it shows the service
        // loaded the whole file, not a prefix.
        let last = try #require(list.last { $0.count >= 12 && !$0.hasPrefix("$hex[") })
        try await withTestPlatform { platform, url in
            let localPart = TestDatabase.uniqueName("developer")
            let email = localPart + "@example.test"
            let refused: [(password: String, reason: String)] = [
                ("qwerty123456", "too common"),
                ("QWERTY123456", "too common"),
                (" Qwerty123456 ", "too common"),
                (last, "too common"),
                (last.uppercased(), "too common"),
                (localPart, "email"),
                (localPart.uppercased(), "email"),
                (email, "email"),
            ]
            for (password, reason) in refused {
                let response = try await register(platform, email: email, password: password, slug: TestDatabase.uniqueName("pw"))
                let error = response.errorEnvelope?.error
                #expect(response.status == 422 && error?.code == "validation_failed" && error?.field == "password",
                        "\(password): \(String(decoding: response.body, as: UTF8.self))")
                #expect(error?.message.contains(reason) == true, "\(password): \(error?.message ?? "")")
                #expect(error?.message.lowercased().contains(password.lowercased()) == false, "the message must not repeat the password")
            }
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.developers") == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.projects") == 0)
            }
            // The same email with an uncommon password registers.
            #expect(try await register(platform, email: email, slug: TestDatabase.uniqueName("pw")).status == 202)
        }
    }

    @Test("with provisioning unreachable, registration answers 503 and creates no developer")
    func provisioningDown() async throws {
        try await withTestPlatform { platform, url in
            await platform.stop("provisioning")
            let email = TestDatabase.uniqueName("dev") + "@example.test"
            let response = try await register(platform, email: email, slug: TestDatabase.uniqueName("down"))
            #expect(response.status == 503 && response.errorEnvelope?.error.code == "provisioning_unavailable")
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.developers") == 0)
            }
        }
    }

    @Test("50 concurrent registrations of 10 slugs make exactly 10 projects and 10 developers")
    func racingRegistrations() async throws {
        // A burst this size from one address is what the limits stop (see `registrationLimits`).
        try await withTestPlatform(provisioning: ["REGISTRATION_RATE_LIMIT_PER_IP": "1000", "REGISTRATION_RATE_LIMIT_GLOBAL": "1000",
                                                          "AUTH_PASSWORD_QUEUE": "200", "AUTH_NEW_ACCOUNT_HASHES": "4"]) { platform, url in
            let slugs = (0..<10).map { _ in TestDatabase.uniqueName("race") }
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        try await register(platform, email: "racer\(index)_\(slugs[0])@example.test", slug: slugs[index % 10]).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 202 }.count == 10)
            #expect(statuses.filter { $0 == 409 }.count == 40)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.projects WHERE slug = ANY(\(slugs))") == 10)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.developers") == 10)
            }
        }
    }

    @Test("registrations are limited per client address and from everyone: 429 with Retry-After, counted before any work")
    func registrationLimits() async throws {
        let limits = ["REGISTRATION_RATE_LIMIT_PER_IP": "5", "REGISTRATION_RATE_LIMIT_GLOBAL": "8", "TRUSTED_PROXIES": "127.0.0.1/32"]
        try await withTestPlatform(provisioning: limits) { platform, url in
            func attempt(from address: String, email: String) async throws -> HTTPClientResponse {
                try await register(platform, email: email, name: "Late", slug: nil, from: address)
            }
            func expectLimited(_ response: HTTPClientResponse) {
                #expect(response.status == 429)
                #expect(response.errorEnvelope?.error.code == "rate_limited")
                #expect(Int(response.headers["Retry-After"] ?? "") ?? 0 > 0)
            }
            // Invalid ones count too: the limits are on attempts, checked before the body is read.
            for index in 0..<5 {
                #expect(try await attempt(from: "203.0.113.1", email: "not-an-email-\(index)").status == 422)
            }
            expectLimited(try await attempt(from: "203.0.113.1", email: "late@example.com"))
            // Other addresses may go on until everyone's limit (8 a minute) is spent.
            for index in 0..<3 {
                #expect(try await attempt(from: "203.0.113.\(10 + index)", email: "not-an-email").status == 422)
            }
            expectLimited(try await attempt(from: "203.0.113.99", email: "later@example.com"))
            let made = try await withPool(url: url) { pool in
                try await pool.query("SELECT count(*) AS n FROM auth.developers WHERE email IN ('late@example.com', 'later@example.com')")
                    .single().decode("n", as: Int.self)
            }
            #expect(made == 0)
        }
    }

    /// Registers, holding inserts into `auth.developers` (reads pass) so that auth stops right
    /// before its commit, after provisioning's 202; kills auth there (SIGKILL), and returns the
    /// project provisioning had accepted.
    func registerKilledBeforeCommit(_ platform: TestPlatform, _ pool: PostgresPool, email: String, slug: String) async throws -> UUID {
        try await pool.withTransaction { tx in
            try await tx.query("LOCK TABLE auth.developers IN SHARE MODE")
            let attempt = Task { try? await register(platform, email: email, slug: slug) }
            try await waitUntil("auth waits to insert the developer, provisioning having accepted the project") {
                try await pool.query("""
                    SELECT 1 FROM pg_stat_activity
                    WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO auth.developers%' AND pid <> pg_backend_pid()
                    """).count == 1
            }
            let project = try await pool.query("SELECT id FROM provisioning.projects WHERE slug = \(slug)").single().decode("id", as: UUID.self)
            try await platform.kill("auth")
            _ = await attempt.value
            return project
        }
    }

    @Test("auth killed between provisioning's 202 and its commit: the project whose owner never committed is deprovisioned after the grace period, and its slug is free again")
    func abandonedRegistrationReconciled() async throws {
        let reconciler = ["PROVISIONING_ORPHAN_GRACE_SECONDS": "1", "PROVISIONING_ORPHAN_CHECK_SECONDS": "1"]
        try await withTestPlatform(.processes, provisioning: reconciler) { platform, url in
            let email = TestDatabase.uniqueName("orphan") + "@example.test"
            let slug = TestDatabase.uniqueName("orphan")
            let (project, developers) = try await withPool(url: url) { pool in
                let project = try await registerKilledBeforeCommit(platform, pool, email: email, slug: slug)
                let developers = try await pool.query("SELECT count(*) AS n FROM auth.developers WHERE email_normalized = \(email)").single()
                    .decode("n", as: Int.self)
                return (project, developers)
            }
            #expect(developers == 0)
            try await platform.start(["auth"])
            let gone = try await platform.waitForProject(project, in: [.deleted], timeout: .seconds(120))
            #expect(gone.status == .deleted)
            // The slug is free, and the same registration made again is a new one.
            let again = try await register(platform, email: email, slug: slug)
            #expect(again.status == 202, "\(String(decoding: again.body, as: UTF8.self))")
            let accepted = try again.decode(ProjectAccepted.self)
            #expect(accepted.projectId != project)
            #expect(try await platform.waitForProject(accepted.projectId, in: [.ready, .failed]).status == .ready)
        }
    }

    @Test("auth killed between provisioning's 202 and its commit: the same registration retried gets the same project and commits its developer")
    func retriedRegistrationCompletes() async throws {
        // The saga's own calls to auth keep retrying while auth is down (about 15 s of attempts).
        let patient = ["PROVISIONING_STEP_MAX_ATTEMPTS": "30", "PROVISIONING_RETRY_MAX_MS": "500"]
        try await withTestPlatform(.processes, provisioning: patient) { platform, url in
            let email = TestDatabase.uniqueName("retry") + "@example.test"
            let slug = TestDatabase.uniqueName("retry")
            let project = try await withPool(url: url) { pool in try await registerKilledBeforeCommit(platform, pool, email: email, slug: slug) }
            try await platform.start(["auth"])
            let retried = try await register(platform, email: email, slug: slug)
            #expect(retried.status == 202, "\(String(decoding: retried.body, as: UTF8.self))")
            let accepted = try retried.decode(ProjectAccepted.self)
            #expect(accepted.projectId == project)
            let ready = try await platform.waitForProject(project, in: [.ready, .failed])
            #expect(ready.status == .ready && ready.ownerId == accepted.developerId)
            // Once committed, the account exists: registering it again is refused.
            let repeated = try await register(platform, email: email, slug: slug)
            #expect(repeated.status == 409 && repeated.errorEnvelope?.error.code == "email_taken")
        }
    }
}
