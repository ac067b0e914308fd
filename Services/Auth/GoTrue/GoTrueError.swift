import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// An error on `/auth/v1/`, in GoTrue's shape, which Supabase's clients parse
/// (docs/protocols/gotrue-reference.md §2):
///
/// - a request with `X-Supabase-Api-Version: 2024-01-01` or later (every client sends it) gets
///   `{"code":"<error_code>","message":"…"}` with that header echoed, which is what tells the
///   client to read `code`;
/// - any other request gets the legacy `{"code":<status>,"error_code":"…","msg":"…"}`;
/// - both carry `x-sb-error-code`, and a weak password's `{"weak_password":{"reasons":[…]}}`.
struct GoTrueError: Error, HTTPResponseError, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    /// `length`, `characters` or `pwned`: set on `weak_password` only.
    var weakPasswordReasons: [String]?
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, weakPasswordReasons: [String]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.weakPasswordReasons = weakPasswordReasons
        self.headers = headers
    }

    static let apiVersionField = HTTPField.Name("X-Supabase-Api-Version")!
    static let errorCodeField = HTTPField.Name("x-sb-error-code")!
    /// The first API version whose errors carry `code` as a string.
    static let currentAPIVersion = "2024-01-01"

    /// The version a request asks for, when it is a date (`YYYY-MM-DD`) GoTrue knows: from
    /// 2024-01-01 on, answers use the current shape.
    static func apiVersion(of request: Request) -> String? {
        guard let value = request.headers[apiVersionField]?.trimmingCharacters(in: .whitespaces),
              value.utf8.count == 10, value >= currentAPIVersion,
              value.utf8.enumerated().allSatisfy({ index, byte in
                  index == 4 || index == 7 ? byte == UInt8(ascii: "-") : (0x30...0x39).contains(byte)
              })
        else { return nil }
        return currentAPIVersion
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[Self.errorCodeField] = code
        var body: [String: JSONValue] = [:]
        if let version = Self.apiVersion(of: request) {
            fields[Self.apiVersionField] = version
            body["code"] = .string(code)
            body["message"] = .string(message)
        } else {
            body["code"] = .number(Double(status.code))
            body["error_code"] = .string(code)
            body["msg"] = .string(message)
        }
        if let weakPasswordReasons {
            body["weak_password"] = .object(["reasons": .array(weakPasswordReasons.map(JSONValue.string))])
        }
        return try jsonResponse(JSONValue.object(body), status: status, headers: fields)
    }

    // MARK: GoTrue's errors, as its sources word them

    static func validation(_ message: String) -> GoTrueError { GoTrueError(.badRequest, "validation_failed", message) }

    static let noAuthorization = GoTrueError(.unauthorized, "no_authorization", "This endpoint requires a valid Bearer token")
    static let notAdmin = GoTrueError(.forbidden, "not_admin", "User not allowed")
    static let userNotFound = GoTrueError(.notFound, "user_not_found", "User not found")
    static let emailExists = GoTrueError(.unprocessableContent, "email_exists", "A user with this email address has already been registered")
    static let invalidEmail = validation("Unable to validate email address: invalid format")

    static func badJWT(_ detail: String) -> GoTrueError {
        GoTrueError(.forbidden, "bad_jwt", "invalid JWT: unable to parse or verify signature, \(detail)")
    }

    /// A password the policy refuses: too long is a plain 400 (as GoTrue's 72-byte limit is);
    /// the rest are 422 `weak_password` with GoTrue's reasons (`length`; `pwned` for a common
    /// password or the account's own email, both "easy to guess").
    static func weakPassword(_ weakness: PasswordPolicy.Weakness) -> GoTrueError {
        switch weakness {
        case .tooShort:
            GoTrueError(.unprocessableContent, "weak_password", "Password should be at least \(PasswordPolicy.minimumLength) characters.",
                        weakPasswordReasons: ["length"])
        case .tooLong:
            validation("Password cannot be longer than \(PasswordHasher.maximumPasswordBytes) characters")
        case .common:
            GoTrueError(.unprocessableContent, "weak_password", "Password is known to be weak and easy to guess, please choose a different one.",
                        weakPasswordReasons: ["pwned"])
        case .email:
            GoTrueError(.unprocessableContent, "weak_password", "Password should not be your email address or its part before the @.",
                        weakPasswordReasons: ["pwned"])
        }
    }

    /// A refused sign-in or refresh (`TokenIssuer.Refusal`), as GoTrue answers the password and
    /// refresh-token grants.
    init(refused refusal: TokenIssuer.Refusal, refreshing: Bool) {
        switch refusal {
        case .invalidCredentials:
            self.init(.badRequest, "invalid_credentials", "Invalid login credentials")
        case .invalidRefreshToken:
            self.init(.badRequest, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        case .refreshTokenReused:
            self.init(.badRequest, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
        // GoTrue's `SessionTimedOut` and past-timebox answers (internal/tokens/service.go,
        // RefreshTokenGrant). Its inactivity is measured from the refresh token's own last use
        // when the session has no refreshed_at, which is what a refresh token's lifetime is here.
        case .expired(.timebox):
            self.init(.badRequest, "session_expired", "Invalid Refresh Token: Session Expired")
        case .expired(.inactivity), .expired(.refreshToken):
            self.init(.badRequest, "session_expired", "Invalid Refresh Token: Session Expired (Inactivity)")
        case .banned:
            self.init(.badRequest, "user_banned", refreshing ? "Invalid Refresh Token: User Banned" : "User is banned")
        }
    }

    /// The gateway's answers (Kong's words) when a request names no project, or a wrong one.
    init(_ failure: ProjectResolver.Failure) {
        switch failure {
        case .noAPIKey: self.init(.unauthorized, "no_api_key", "No API key found in request")
        case .invalidAPIKey: self.init(.unauthorized, "invalid_api_key", "Invalid API key")
        case .hostMismatch: self.init(.forbidden, "tenant_mismatch", "The API key belongs to another project than the host names.")
        }
    }
}
