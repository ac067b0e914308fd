import Contracts
import Foundation
import HTTPClient

/// What every internal call carries and where tenant routes live; shared by the clients here.
enum InternalCall {
    /// `X-Service-Token`: the internal routes refuse calls without it.
    static func headers(token: String, _ extra: (String, String)...) -> HTTPClientHeaders {
        HTTPClientHeaders([(PlatformHeader.serviceToken, token)] + extra)
    }

    /// `{base}/internal/v1/tenants/{id}`, the id lower-case as every service prints it.
    static func tenantURL(_ baseURL: String, _ tenantID: UUID) -> String {
        baseURL + "/internal/v1/tenants/" + tenantID.uuidString.lowercased()
    }
}
