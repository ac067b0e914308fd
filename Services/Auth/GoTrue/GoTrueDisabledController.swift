import Foundation
import Hummingbird
import ServiceKit

/// What GoTrue offers and the platform does not enable — magic links and OTPs, phone, OAuth and
/// SSO sign-ins, identity linking, MFA, passkeys, mailed invites, recovery and links, the OAuth
/// server — each answering the error GoTrue itself gives when that feature is switched off
/// (docs/protocols/gotrue-reference.md §5), so a client method reports "not enabled", never a
/// 500 or a silent success. The project's key is checked first, as on every route.
struct GoTrueDisabledController: Sendable {
    let access: GoTrueAccess

    /// One switched-off feature: its routes and GoTrue's answer.
    struct Feature: Sendable {
        var routes: [(method: HTTPRequest.Method, path: String)]
        var error: GoTrueError
    }

    static let features: [Feature] = [
        Feature(routes: [(.post, "/verify"), (.get, "/verify")],
                error: GoTrueError(.forbidden, "otp_expired", "Token has expired or is invalid")),
        Feature(routes: [(.post, "/resend"), (.post, "/recover"), (.get, "/reauthenticate"), (.post, "/invite"), (.post, "/admin/generate_link")],
                error: GoTrueError(.unprocessableContent, "feature_disabled", "This feature is not enabled: the platform sends no email or SMS")),
        Feature(routes: [(.get, "/authorize"), (.get, "/callback")],
                error: GoTrueError.validation("Unsupported provider: provider is not enabled")),
        Feature(routes: [(.post, "/sso")],
                error: GoTrueError(.notFound, "saml_provider_disabled", "SAML 2.0 is disabled")),
        Feature(routes: [(.get, "/user/identities/authorize"), (.delete, "/user/identities/:identity")],
                error: GoTrueError(.notFound, "manual_linking_disabled", "Manual linking is disabled")),
        Feature(routes: [(.post, "/factors/:factor/challenge"), (.post, "/factors/:factor/verify"), (.delete, "/factors/:factor")],
                error: GoTrueError(.notFound, "mfa_factor_not_found", "Factor not found")),
        Feature(routes: [(.get, "/admin/oauth/clients"), (.post, "/admin/oauth/clients"), (.get, "/admin/oauth/clients/:client"),
                         (.put, "/admin/oauth/clients/:client"), (.delete, "/admin/oauth/clients/:client"),
                         (.post, "/admin/oauth/clients/:client/regenerate_secret"), (.get, "/oauth/authorize"), (.post, "/oauth/token")],
                error: GoTrueError(.notFound, "feature_disabled", "OAuth server is disabled")),
        Feature(routes: [(.post, "/passkeys/authentication/options"), (.post, "/passkeys/registration/options")],
                error: GoTrueError(.notFound, "passkey_disabled", "Passkeys are disabled")),
    ]

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post("/otp", use: otp)
        group.post("/factors", use: enrollFactor)
        for feature in Self.features {
            for route in feature.routes {
                group.on(RouterPath(route.path), method: route.method) { request, _ -> Response in
                    _ = try await access.tenant(request)
                    throw feature.error
                }
            }
        }
    }

    /// Magic links by email, codes by SMS: GoTrue's answer depends on which was asked for.
    @Sendable func otp(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        _ = try await access.tenant(request)
        let body = try await request.decodeJSON(as: OTPRequest.self, context: context)
        if GoTrueSessionsController.nonEmpty(body.phone) != nil {
            throw GoTrueError(.badRequest, "phone_provider_disabled", "Unsupported phone provider")
        }
        throw GoTrueError(.unprocessableContent, "email_provider_disabled", "Login with magic link is disabled")
    }

    /// Each factor type has its own "enroll is disabled" code.
    @Sendable func enrollFactor(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        _ = try await access.tenant(request)
        let body = try await request.decodeJSON(as: FactorEnrollment.self, context: context)
        switch body.factorType {
        case "totp": throw GoTrueError(.unprocessableContent, "mfa_totp_enroll_not_enabled", "MFA enroll is disabled for TOTP")
        case "phone": throw GoTrueError(.unprocessableContent, "mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone")
        case "webauthn": throw GoTrueError(.unprocessableContent, "mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn")
        default: throw GoTrueError.validation("factor_type needs to be totp, phone, or webauthn")
        }
    }

    struct OTPRequest: Decodable {
        var phone: String?
    }

    struct FactorEnrollment: Decodable {
        var factorType: String?

        enum CodingKeys: String, CodingKey {
            case factorType = "factor_type"
        }
    }
}
