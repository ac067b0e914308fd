import Contracts
import Foundation
import HTTPClient

/// Auth could not give an answer: unreachable, or a status other than found / not found.
public struct AuthUnavailable: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

/// One GET to auth whose answer is found (200, decoded), not found (404, nil) or an outage:
/// how realtime, storage and provisioning look credentials up.
struct AuthLookup: Sendable {
    let http: CurlHTTPClient
    let authURL: String
    let timeout: Duration

    func get(_ path: String, headers: HTTPClientHeaders = HTTPClientHeaders()) async throws(AuthUnavailable) -> HTTPClientResponse {
        do {
            return try await http.execute(HTTPClientRequest(url: authURL + path, headers: headers, timeout: timeout))
        } catch {
            throw AuthUnavailable(description: "auth unreachable: \(error)")
        }
    }

    /// The decoded 200 answer, or nil on 404; `what` names the lookup in an outage's description.
    func find<Value: Decodable>(_ type: Value.Type, at path: String, headers: HTTPClientHeaders, what: String) async throws(AuthUnavailable) -> Value? {
        let response = try await get(path, headers: headers)
        switch response.status {
        case 200:
            do { return try response.decode(Value.self) } catch {
                throw AuthUnavailable(description: "\(what) answered an unreadable body: \(error)")
            }
        case 404: return nil
        default: throw AuthUnavailable(description: "\(what) answered \(response.status)")
        }
    }
}
