import CCurl

/// Everything the engine thread needs for one attempt, validated and rendered on the caller's
/// task beforehand, so that the engine thread only translates it into `curl_easy_setopt` calls.
struct PreparedRequest: Sendable {
    var method: HTTPMethod
    var url: ValidatedURL
    /// Header lines in libcurl's `curl_slist` syntax: `"Name: value"`, `"Name;"` for an empty
    /// value, `"Name:"` to suppress a header libcurl would add by itself.
    var headerLines: [String]
    var body: [UInt8]?
    var connectTimeoutMilliseconds: Int
    var timeoutMilliseconds: Int
    var maxResponseBodySize: Int
    /// `host:port:address:port` for `CURLOPT_CONNECT_TO`, when the request is pinned to an
    /// address (per handle: unlike `CURLOPT_RESOLVE`, nothing enters the shared DNS cache, so a
    /// pin never outlives its request).
    var connectTo: String?
}

/// One libcurl easy handle together with everything that must live exactly as long as its current
/// configuration: the error buffer, the header `curl_slist`, and the ``ResponseSink`` its
/// callbacks write into.
///
/// Handles are reused: ``reset()`` returns one to a pristine state (keeping the allocation and
/// libcurl's per-handle caches), and `deinit` is the single place where the easy handle, its
/// header list and its error buffer are freed.
///
/// Not `Sendable`: confined to the engine thread.
final class EasyHandle {
    let raw: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var connectToList: UnsafeMutablePointer<curl_slist>?
    private(set) var sink: ResponseSink?

    init?() {
        guard let raw = curl_easy_init() else { return nil }
        self.raw = raw
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(self.raw)
        self.freeHeaderList()
        self.errorBuffer.deallocate()
    }

    /// Returns the handle to its freshly-initialised state so it can serve another request.
    /// Must only be called once the handle is no longer part of a multi handle.
    func reset() {
        curl_easy_reset(self.raw)
        self.freeHeaderList()
        self.sink = nil
        self.errorBuffer[0] = 0
    }

    private func freeHeaderList() {
        if let headerList = self.headerList {
            curl_slist_free_all(headerList)
            self.headerList = nil
        }
        if let connectToList = self.connectToList {
            curl_slist_free_all(connectToList)
            self.connectToList = nil
        }
    }

    /// Applies every option of `request`. On failure the handle must be ``reset()`` before reuse.
    func configure(for request: PreparedRequest) throws(HTTPClientError) {
        let sink = ResponseSink(limit: request.maxResponseBodySize)
        self.sink = sink
        let handle = self.raw

        try check(ccurl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, self.errorBuffer))
        // Never let libcurl raise signals (SIGALRM for DNS timeouts, SIGPIPE): the process is
        // multi-threaded and owns its signal handling.
        try check(ccurl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        try check(ccurl_easy_setopt_string(handle, CURLOPT_URL, request.url.string))
        // Defence in depth: ValidatedURL already restricts schemes to http(s).
        _ = ccurl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        try check(ccurl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMilliseconds))
        try check(ccurl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.timeoutMilliseconds))
        // Pooled connections can sit idle for a while; keep-alive probes detect dead peers.
        try check(ccurl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1))

        try self.configureMethodAndBody(request)

        for line in request.headerLines {
            guard let list = curl_slist_append(self.headerList, line) else {
                throw .transport(code: Int(CURLE_OUT_OF_MEMORY.rawValue), message: "curl_slist_append failed")
            }
            self.headerList = list
        }
        try check(ccurl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, self.headerList))
        if let entry = request.connectTo {
            guard let list = curl_slist_append(nil, entry) else {
                throw .transport(code: Int(CURLE_OUT_OF_MEMORY.rawValue), message: "curl_slist_append failed")
            }
            self.connectToList = list
            try check(ccurl_easy_setopt_slist(handle, CURLOPT_CONNECT_TO, list))
        }

        // The sink is kept alive by `self.sink` for as long as the callbacks can run: it is only
        // dropped in `reset()`, after libcurl has forgotten the callbacks and user data.
        let userData = Unmanaged.passUnretained(sink).toOpaque()
        try check(ccurl_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { buffer, size, count, userData in
            guard let userData else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(userData).takeUnretainedValue()
            return sink.receiveBody(UnsafeRawBufferPointer(start: buffer, count: size * count))
        })
        try check(ccurl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, userData))
        try check(ccurl_easy_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION) { buffer, size, count, userData in
            guard let userData else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(userData).takeUnretainedValue()
            return sink.receiveHeaderLine(UnsafeRawBufferPointer(start: buffer, count: size * count))
        })
        try check(ccurl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, userData))
    }

    private func configureMethodAndBody(_ request: PreparedRequest) throws(HTTPClientError) {
        let handle = self.raw
        let method = request.method
        switch (method, request.body) {
        case (.get, nil):
            try check(ccurl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1))
        case (.head, nil):
            try check(ccurl_easy_setopt_long(handle, CURLOPT_NOBODY, 1))
        case (.post, _), (.put, _), (.patch, _), (_, .some):
            // A body (possibly empty, so that POST/PUT/PATCH carry `Content-Length: 0`): libcurl
            // copies it, so the bytes need not outlive this call. This makes the request a POST;
            // CUSTOMREQUEST then only replaces the method token on the request line.
            let body = request.body ?? []
            try check(body.withUnsafeBytes { ccurl_easy_set_body(handle, $0.baseAddress, curl_off_t($0.count)) })
            if method != .post {
                try check(ccurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method.rawValue))
            }
        default:
            // DELETE, OPTIONS, ... without a body.
            try check(ccurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method.rawValue))
        }
    }

    /// The outcome of a finished transfer, given the `CURLcode` from its CURLMSG_DONE message.
    func result(for code: CURLcode, url: ValidatedURL) -> Result<HTTPClientResponse, HTTPClientError> {
        guard code == CURLE_OK else {
            return .failure(self.error(for: code, url: url))
        }
        var status = 0
        _ = ccurl_easy_getinfo_long(self.raw, CURLINFO_RESPONSE_CODE, &status)
        guard let sink = self.sink else {
            return .failure(.transport(code: Int(CURLE_FAILED_INIT.rawValue), message: "transfer had no response sink"))
        }
        return .success(HTTPClientResponse(status: status, headers: sink.headers, body: sink.body))
    }

    /// The bytes of request this transfer has written to a connection (`CURLINFO_REQUEST_SIZE`),
    /// counting attempts on a kept-alive connection that libcurl then retried on a fresh one.
    private var requestBytesSent: Int {
        var size = 0
        _ = ccurl_easy_getinfo_long(self.raw, CURLINFO_REQUEST_SIZE, &size)
        return size
    }

    private func error(for code: CURLcode, url: ValidatedURL) -> HTTPClientError {
        switch code {
        case CURLE_COULDNT_CONNECT where self.requestBytesSent > 0:
            // libcurl sent the request on a kept-alive connection that then died without an
            // answer, and its own retry on a fresh connection could not connect. The request may
            // have been processed: a dropped connection, never "cannot connect" (which promises
            // that nothing was sent; found by the fault campaign: a registration committed by a
            // service killed before it answered was taken for one that never arrived).
            return .transport(code: Int(CURLE_GOT_NOTHING.rawValue),
                              message: "the connection closed after the request was sent, and reconnecting failed")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .cannotConnect(url: url.origin)
        case CURLE_OPERATION_TIMEDOUT:
            return .timedOut
        case CURLE_WRITE_ERROR where self.sink?.exceededLimit == true:
            return .responseTooLarge(limit: self.sink?.limit ?? 0)
        default:
            // The error buffer holds libcurl's specific explanation ("Failed to connect to host
            // port 80 ..."); it names host and port at most, never the query, headers or body.
            let detail = self.errorBuffer[0] != 0 ? String(cString: self.errorBuffer) : String(cString: curl_easy_strerror(code))
            return .transport(code: Int(code.rawValue), message: detail)
        }
    }
}

private func check(_ code: CURLcode) throws(HTTPClientError) {
    guard code == CURLE_OK else {
        throw .transport(code: Int(code.rawValue), message: String(cString: curl_easy_strerror(code)))
    }
}

/// Collects one response: libcurl's header and write callbacks feed it on the engine thread.
///
/// Not `Sendable`: confined to the engine thread. The finished body and headers leave it as values.
final class ResponseSink {
    let limit: Int
    private(set) var headers = HTTPClientHeaders()
    private(set) var body: [UInt8] = []
    private(set) var exceededLimit = false

    init(limit: Int) {
        self.limit = limit
    }

    /// CURLOPT_WRITEFUNCTION: returns the number of bytes taken; anything else makes libcurl abort
    /// the transfer with CURLE_WRITE_ERROR.
    func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard self.body.count + bytes.count <= self.limit else {
            self.exceededLimit = true
            return 0
        }
        self.body.append(contentsOf: bytes)
        return bytes.count
    }

    /// CURLOPT_HEADERFUNCTION: called once per header line, CRLF included, status lines and the
    /// final empty line too. A status line starts a new header block (after `100 Continue`, or
    /// for the next response of a redirect chain), so only the final response's fields remain.
    func receiveHeaderLine(_ bytes: UnsafeRawBufferPointer) -> Int {
        let line = bytes
        if line.starts(with: "HTTP/".utf8) {
            self.headers = HTTPClientHeaders()
            self.body.removeAll(keepingCapacity: true)
            return bytes.count
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            return bytes.count  // the terminating empty line, or an obsolete folded continuation
        }
        let name = String(decoding: line[..<colon].trimmingHTTPWhitespace(), as: UTF8.self)
        let value = String(decoding: line[(colon + 1)...].trimmingHTTPWhitespace(), as: UTF8.self)
        guard !name.isEmpty else { return bytes.count }
        self.headers.add(name: name, value: value)

        if name.equalsCaseInsensitiveASCII("Content-Length"), let length = Int(value), length > 0 {
            // Pre-size the body, but never trust the peer for more than 1 MiB up front (and HEAD
            // responses announce a length without sending a body).
            self.body.reserveCapacity(min(length, self.limit, 1 << 20))
        }
        return bytes.count
    }
}

extension Slice where Base == UnsafeRawBufferPointer {
    /// Drops leading and trailing spaces, tabs, CR and LF.
    func trimmingHTTPWhitespace() -> Slice<UnsafeRawBufferPointer> {
        func isWhitespace(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
        }
        guard let first = self.firstIndex(where: { !isWhitespace($0) }),
            let last = self.lastIndex(where: { !isWhitespace($0) })
        else { return self[self.startIndex..<self.startIndex] }
        return self[first...last]
    }
}
