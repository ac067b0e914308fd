import CCurl

/// An absolute http(s) URL that libcurl's own parser accepted, plus its log-safe forms.
struct ValidatedURL: Sendable, Hashable {
    /// The URL exactly as the caller gave it; handed to libcurl.
    let string: String
    /// `scheme://host:port`: no credentials, path or query. Used in ``HTTPClientError/cannotConnect(url:)``.
    let origin: String
    /// `scheme://host:port/path`: no credentials, query or fragment. Used in log metadata.
    let redacted: String
    /// The host as libcurl reads it (an IPv6 literal keeps its brackets) and the port, the
    /// scheme's default when none is given.
    let host: String
    let port: String

    /// Parses `string` with libcurl's URL API (the same parser the transfer will use, so
    /// anything accepted here is accepted there) and keeps only `http` and `https`.
    init(_ string: String) throws(HTTPClientError) {
        guard let handle = curl_url() else {
            throw .transport(code: Int(CURLE_OUT_OF_MEMORY.rawValue), message: "curl_url() failed")
        }
        defer { curl_url_cleanup(handle) }

        let code = curl_url_set(handle, CURLUPART_URL, string, 0)
        guard code == CURLUE_OK else {
            throw .invalidURL(reason: String(cString: curl_url_strerror(code)))
        }
        guard let scheme = Self.part(handle, CURLUPART_SCHEME)?.lowercased() else {
            throw .invalidURL(reason: "missing scheme")
        }
        guard scheme == "http" || scheme == "https" else {
            throw .invalidURL(reason: "unsupported scheme '\(scheme)'")
        }
        guard let host = Self.part(handle, CURLUPART_HOST), !host.isEmpty else {
            throw .invalidURL(reason: "missing host")
        }
        let port = Self.part(handle, CURLUPART_PORT, flags: UInt32(CURLU_DEFAULT_PORT)) ?? ""
        let path = Self.part(handle, CURLUPART_PATH) ?? "/"

        self.string = string
        self.host = host
        self.port = port
        self.origin = port.isEmpty ? "\(scheme)://\(host)" : "\(scheme)://\(host):\(port)"
        self.redacted = self.origin + path
    }

    private static func part(_ handle: OpaquePointer, _ part: CURLUPart, flags: UInt32 = 0) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard curl_url_get(handle, part, &value, flags) == CURLUE_OK, let value else { return nil }
        defer { curl_free(value) }
        return String(cString: value)
    }
}
