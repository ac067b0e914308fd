import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Postgres

/// What an idempotent operation answers: kept as bytes so a repeat can be answered with
/// exactly the same status, body and content type.
public struct IdempotentResponse: Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var body: [UInt8]
    public var contentType: String

    public init(status: HTTPResponse.Status, body: [UInt8], contentType: String) {
        self.status = status
        self.body = body
        self.contentType = contentType
    }

    /// A JSON answer, encoded as `jsonResponse` encodes (ISO 8601 dates, sorted keys).
    public static func json<Value: Encodable>(_ value: Value, status: HTTPResponse.Status = .ok) throws -> IdempotentResponse {
        IdempotentResponse(status: status, body: Array(try jsonEncoder().encode(value)), contentType: jsonContentType)
    }

    /// An `APIError` as `ErrorMiddleware` renders it.
    init(error: APIError) {
        self.init(status: error.status, body: error.encodedBody, contentType: jsonContentType)
    }

    func response(replayed: Bool) -> Response {
        var headers: HTTPFields = [.contentType: contentType]
        if replayed { headers[IdempotencyStore.replayedHeader] = "true" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Stripe-style idempotency keys: a POST carrying `Idempotency-Key` runs at most once per key,
/// and every repeat gets the first answer back, so a client (or our HTTP client's retries) can
/// safely resend a request whose answer it never saw.
///
/// State lives in the using service's own schema, table `idempotency_keys` (the service adds
/// it with a migration; provisioning's is `0002_idempotency_keys.sql`). Per request:
///
/// - No key: the operation simply runs.
/// - A key that is not 1…255 visible ASCII characters: 400 `invalid_idempotency_key`.
/// - First use: the key is claimed (`in_flight`) *before* the operation runs, so a concurrent
///   duplicate is turned away instead of running it twice. The answer is then stored
///   (`completed`), including a 4xx `APIError` the operation threw — the same request would
///   fail the same way, and replaying it is what Stripe does. 408 and 429 and every 5xx or
///   unexpected error are *not* stored: the claim is released so the client may retry.
/// - Repeat of the same request (same method, path, query and body — a SHA-256 fingerprint):
///   the stored answer, with `Idempotent-Replayed: true`.
/// - Repeat of a different request: 422 `idempotency_key_reused`.
/// - Repeat while the first is still running: 409 `idempotency_key_in_flight` (with
///   `Retry-After: 1`). A claim older than `inFlightTimeout` is taken to be abandoned (its
///   process died) and the same request may take it over; only the current claim's owner may
///   complete or release it. So `inFlightTimeout` must exceed the longest operation.
/// - Rows older than `retention` count as absent; a claim deletes a few expired rows of its
///   scope each time, so the table stays the size of one retention window of traffic.
///
/// Keys are unique within a `scope` ("POST /internal/v1/projects"). Internal endpoints have one
/// kind of caller; a public endpoint should put the caller in the scope too (Stripe scopes keys
/// by account), so two callers cannot collide on — or read — each other's answers.
///
/// Limit: the operation's own writes and the stored answer commit separately. If storing the
/// answer fails (the database went away in between), the client still gets the answer, but
/// the claim stays `in_flight` until `inFlightTimeout` and a later repeat runs the operation
/// again — operations must still be safe to repeat at the data level (unique constraints).
public struct IdempotencyStore: Sendable {
    public let pool: PostgresPool
    public let schema: String
    public let retention: Duration
    public let inFlightTimeout: Duration

    static let keyHeader = HTTPField.Name(PlatformHeader.idempotencyKey)!  // a valid token, fixed at compile time
    static let replayedHeader = HTTPField.Name(PlatformHeader.idempotentReplayed)!  // likewise
    /// Expired rows one claim deletes at most, so a claim's cost stays bounded.
    static let purgeBatch = 100

    public init(
        pool: PostgresPool,
        schema: String,
        retention: Duration = .seconds(86_400),
        inFlightTimeout: Duration = .seconds(60)
    ) {
        self.pool = pool
        self.schema = schema
        self.retention = retention
        self.inFlightTimeout = inFlightTimeout
    }

    /// Runs `operation` at most once per (scope, key) and answers every repeat the same way.
    ///
    /// `operation` receives the request body (collected here, up to the context's upload
    /// limit, since it is part of the fingerprint); decode it with `decodeJSON(_:from:)`.
    /// Throw an `APIError` for answers the client should see, as in any route.
    public func respond(
        isolation: isolated (any Actor)? = #isolation,
        to request: Request,
        context: some RequestContext,
        scope: String,
        operation: (_ body: ByteBuffer) async throws -> IdempotentResponse
    ) async throws -> Response {
        let body = try await request.collectBody(context: context)
        guard let key = request.headers[Self.keyHeader] else {
            return try await operation(body).response(replayed: false)
        }
        guard Self.isValidKey(key) else {
            throw APIError(
                .badRequest, code: "invalid_idempotency_key",
                message: "The \(PlatformHeader.idempotencyKey) header must be 1 to 255 visible ASCII characters."
            )
        }
        let row = KeyRow(scope: scope, key: key)
        let fingerprint = Self.fingerprint(request: request, body: body)
        let claim = UUID()

        // A claim can race with a release or an expiry between its two statements; a few
        // rounds settle it.
        var claimed = false
        for _ in 0..<3 where !claimed {
            switch try await claimOrFind(row, fingerprint: fingerprint, claim: claim) {
            case .claimed:
                claimed = true
            case .completed(let stored):
                return stored.response(replayed: true)
            case .differentRequest:
                throw APIError(
                    .unprocessableContent, code: "idempotency_key_reused",
                    message: "This \(PlatformHeader.idempotencyKey) was already used for a different request."
                )
            case .inFlight:
                throw Self.inFlightError
            case .changed:
                continue
            }
        }
        guard claimed else { throw Self.inFlightError }

        let answer: IdempotentResponse
        do {
            answer = try await operation(body)
        } catch let error as APIError where Self.isStored(error.status) {
            await shielded { try await complete(row, claim: claim, with: IdempotentResponse(error: error)) }
                .logFailure(context.logger, "could not store an idempotent error answer", row)
            throw error
        } catch {
            await shielded { try await release(row, claim: claim) }
                .logFailure(context.logger, "could not release an idempotency key after a failure", row)
            throw error
        }
        if Self.isStored(answer.status) {
            await shielded { try await complete(row, claim: claim, with: answer) }
                .logFailure(context.logger, "could not store an idempotent answer; the key stays claimed until it times out", row)
        } else {
            await shielded { try await release(row, claim: claim) }
                .logFailure(context.logger, "could not release an idempotency key after a failure", row)
        }
        return answer.response(replayed: false)
    }

    // MARK: Rules

    static var inFlightError: APIError {
        APIError(
            .conflict, code: "idempotency_key_in_flight",
            message: "A request with this \(PlatformHeader.idempotencyKey) is still being processed; retry shortly.",
            headers: [.retryAfter: "1"]
        )
    }

    /// 1…255 characters from `!` to `~`: no spaces, controls or non-ASCII, so keys are safe
    /// in logs and comparable byte for byte.
    static func isValidKey(_ key: String) -> Bool {
        (1...255).contains(key.utf8.count) && key.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// Answers worth replaying: everything below 500 except 408 and 429, which say "try again".
    static func isStored(_ status: HTTPResponse.Status) -> Bool {
        status.code < 500 && status.code != 408 && status.code != 429
    }

    /// Hex SHA-256 of method, path (with query) and body, NUL-separated (neither method nor
    /// path can hold a NUL, so no two requests share an input). A JSON object body is hashed in
    /// canonical form (keys sorted, no insignificant white space), so the same parameters in
    /// another key order — which JSON encoders do not promise to keep — count as the same
    /// request, as Stripe compares parameters rather than bytes.
    static func fingerprint(request: Request, body: ByteBuffer) -> String {
        var hash = SHA256()
        hash.update(data: Array(request.method.rawValue.utf8) + [0])
        var target = request.uri.path
        if let query = request.uri.query { target += "?" + query }
        hash.update(data: Array(target.utf8) + [0])
        let raw = Data(buffer: body)
        if let object = try? JSONSerialization.jsonObject(with: raw),
           let canonical = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]) {
            hash.update(data: canonical)
        } else {
            hash.update(data: raw)
        }
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in hash.finalize() {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    // MARK: Database

    struct KeyRow: Sendable {
        var scope: String
        var key: String
    }

    enum Lookup {
        case claimed
        case completed(IdempotentResponse)
        case differentRequest
        case inFlight
        /// The row changed between claim and look-up (released, expired): claim again.
        case changed
    }

    /// Claims the key (new, expired, or abandoned in flight by the same request), purging a
    /// few expired rows of the scope on the way; otherwise reads what holds it.
    private func claimOrFind(_ row: KeyRow, fingerprint: String, claim: UUID) async throws -> Lookup {
        let retentionSeconds = retention.seconds
        let inFlightSeconds = inFlightTimeout.seconds
        let claimed = try await pool.query("""
            WITH purged AS (
                DELETE FROM \(identifier: schema).idempotency_keys
                WHERE (scope, key) IN (
                    SELECT scope, key FROM \(identifier: schema).idempotency_keys
                    WHERE scope = \(row.scope) AND key <> \(row.key)
                      AND created_at < now() - make_interval(secs => \(retentionSeconds))
                    ORDER BY created_at
                    LIMIT \(Self.purgeBatch)
                    FOR UPDATE SKIP LOCKED)
            )
            INSERT INTO \(identifier: schema).idempotency_keys AS existing (scope, key, fingerprint, state, claim_id)
            VALUES (\(row.scope), \(row.key), \(fingerprint), 'in_flight', \(claim))
            ON CONFLICT (scope, key) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', claim_id = EXCLUDED.claim_id,
                    response_status = NULL, response_body = NULL, response_content_type = NULL,
                    created_at = now(), completed_at = NULL
                WHERE existing.created_at < now() - make_interval(secs => \(retentionSeconds))
                   OR (existing.state = 'in_flight' AND existing.fingerprint = EXCLUDED.fingerprint
                       AND existing.created_at < now() - make_interval(secs => \(inFlightSeconds)))
            RETURNING claim_id
            """)
        if claimed.count == 1 { return .claimed }

        let found = try await pool.query("""
            SELECT fingerprint, state, response_status, response_body, response_content_type,
                   created_at < now() - make_interval(secs => \(retentionSeconds)) AS expired,
                   created_at < now() - make_interval(secs => \(inFlightSeconds)) AS stale
            FROM \(identifier: schema).idempotency_keys
            WHERE scope = \(row.scope) AND key = \(row.key)
            """)
        guard let existing = found.first else { return .changed }
        if try existing.decode("expired", as: Bool.self) { return .changed }
        if try existing.decode("fingerprint", as: String.self) != fingerprint { return .differentRequest }
        guard try existing.decode("state", as: String.self) == "completed" else {
            return try existing.decode("stale", as: Bool.self) ? .changed : .inFlight
        }
        return .completed(IdempotentResponse(
            status: HTTPResponse.Status(code: try existing.decode("response_status", as: Int.self)),
            body: Array(try existing.decode("response_body", as: Data.self)),
            contentType: try existing.decode("response_content_type", as: String.self)
        ))
    }

    private func complete(_ row: KeyRow, claim: UUID, with answer: IdempotentResponse) async throws {
        try await pool.query("""
            UPDATE \(identifier: schema).idempotency_keys
            SET state = 'completed', response_status = \(answer.status.code), response_body = \(Data(answer.body)),
                response_content_type = \(answer.contentType), completed_at = now()
            WHERE scope = \(row.scope) AND key = \(row.key) AND claim_id = \(claim)
            """)
    }

    private func release(_ row: KeyRow, claim: UUID) async throws {
        try await pool.query("""
            DELETE FROM \(identifier: schema).idempotency_keys
            WHERE scope = \(row.scope) AND key = \(row.key) AND claim_id = \(claim)
            """)
    }

    /// Runs `work` in a task of its own, which the caller's cancellation does not reach: a
    /// client that hangs up after the operation ran must not leave its key claimed.
    private func shielded(_ work: @escaping @Sendable () async throws -> Void) async -> Result<Void, any Error> {
        await Task { () -> Result<Void, any Error> in
            do {
                try await work()
                return .success(())
            } catch {
                return .failure(error)
            }
        }.value
    }
}

extension Result<Void, any Error> {
    fileprivate func logFailure(_ logger: Logger, _ message: Logger.Message, _ row: IdempotencyStore.KeyRow) {
        guard case .failure(let error) = self else { return }
        logger.error(message, metadata: [
            "idempotency.scope": "\(row.scope)", "idempotency.key": "\(row.key)", "error": "\(error)",
        ])
    }
}

extension Duration {
    /// Whole and fractional seconds, for `make_interval(secs => …)`.
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
