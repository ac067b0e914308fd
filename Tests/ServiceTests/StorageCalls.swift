import Foundation
import HTTPClient
import TestSupport

/// An answer of storage's Storage API, read as the tests need it.
struct StorageAnswer {
    var status: Int
    var headers: HTTPClientHeaders
    var body: [UInt8]

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    /// The body as a JSON array (empty when it is not one).
    var list: [[String: Any]] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [[String: Any]] ?? [] }
    var code: String? { json["code"] as? String }
    /// The Storage API's error shape: four strings, the status among them.
    var isStorageError: Bool {
        json["statusCode"] as? String == String(status) && json["code"] is String && json["error"] is String && json["message"] is String
    }
}

extension TestPlatform {
    /// A call to `/storage/v1<path>` as the Storage clients make one: `key` as `apikey` and, unless
    /// `bearer` says otherwise, as the bearer; JSON or raw bytes in.
    func storageCall(_ method: HTTPMethod, _ path: String, key: String?, bearer: String? = nil, json: [String: Any]? = nil,
                     body: [UInt8]? = nil, headers extra: [(String, String)] = []) async throws -> StorageAnswer {
        var headers = HTTPClientHeaders()
        if let key { headers.add(name: "apikey", value: key) }
        if let bearer = bearer ?? key { headers.add(name: "Authorization", value: "Bearer " + bearer) }
        for (name, value) in extra { headers.add(name: name, value: value) }
        var bytes = body
        if let json {
            headers.add(name: "Content-Type", value: "application/json")
            bytes = Array(try JSONSerialization.data(withJSONObject: json))
        }
        let response = try await client.execute(HTTPClientRequest(method: method, url: url("storage") + "/storage/v1" + path,
                                                                  headers: headers, body: bytes))
        return StorageAnswer(status: response.status, headers: response.headers, body: response.body)
    }

    /// A new end user of the project, signed up with its publishable key: their access token and id.
    func signUpUser(_ tenant: ProvisionedTenant, _ email: String) async throws -> (token: String, id: String) {
        let signup = try await tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/signup", apikey: tenant.keys.publishable,
                                          json: ["email": email, "password": "a long tenant passphrase"])
        let body = try JSONSerialization.jsonObject(with: Data(signup.body)) as? [String: Any]
        let user = body?["user"] as? [String: Any]
        guard let token = body?["access_token"] as? String, let id = user?["id"] as? String else {
            throw ServiceProcessError(description: "sign-up of \(email) answered \(signup.status)")
        }
        return (token, id)
    }
}
