import Foundation
import HTTPTypes
import Hummingbird

/// Answers a request for an object's bytes (docs/protocols/storage-reference.md §3.2): streamed
/// from its version's file, with `Content-Type` (HTML served as text), `Content-Length`, `ETag`,
/// `Last-Modified`, `Cache-Control`, `Accept-Ranges`; `If-None-Match` / `If-Modified-Since` →
/// 304; one `Range` (`a-b`, `a-`, `-n`) → 206 with `Content-Range`, an unsatisfiable one → 416;
/// several ranges get the whole object (200). `?download[=name]` adds `Content-Disposition`.
struct ObjectDownload: Sendable {
    let files: ObjectFiles

    func respond(_ object: StoredObject, tenant: UUID, request: Request, expires: Date? = nil) async throws -> Response {
        var headers: HTTPFields = [
            .contentType: object.contentType.lowercased().contains("text/html") ? "text/plain" : object.contentType,
            .eTag: object.etag,
            .lastModified: Self.httpDate(object.updatedAt),
            .acceptRanges: "bytes",
            HTTPField.Name("X-Robots-Tag")!: "none",
        ]
        if let expires {
            headers[.expires] = Self.httpDate(expires)
        } else {
            headers[.cacheControl] = object.cacheControl
        }
        if let name = request.uri.queryParameters.get("download") {
            let encoded = name.addingPercentEncoding(withAllowedCharacters: Self.componentAllowed) ?? ""
            headers[.contentDisposition] = name.isEmpty ? "attachment;" : "attachment; filename=\(encoded); filename*=UTF-8''\(encoded)"
        }
        if Self.notModified(object, request) {
            return Response(status: .notModified, headers: headers)
        }
        var range: ClosedRange<Int64>?
        if let header = request.headers[.range] {
            switch Self.range(header, size: object.size) {
            case .whole: break
            case .part(let part): range = part
            case .unsatisfiable:
                throw StorageError(.rangeNotSatisfiable, "InvalidRange", error: "invalid_range", "invalid range provided",
                                   headers: [.contentRange: "bytes */\(object.size)"])
            }
        }
        if let range {
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(object.size)"
            headers[.contentLength] = String(range.upperBound - range.lowerBound + 1)
        } else {
            headers[.contentLength] = String(object.size)
        }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        if request.method == .head { return Response(status: status, headers: headers) }
        let body = try await files.read(version: object.version, tenant: tenant, range: range)
        return Response(status: status, headers: headers, body: body)
    }

    static func notModified(_ object: StoredObject, _ request: Request) -> Bool {
        if let tags = request.headers[.ifNoneMatch] {
            return tags.split(separator: ",").contains { tag in
                let value = tag.trimmingCharacters(in: .whitespaces)
                return value == "*" || value == object.etag || value == "W/" + object.etag
            }
        }
        if let since = request.headers[.ifModifiedSince], let date = Self.parseHTTPDate(since) {
            return object.updatedAt.timeIntervalSince1970.rounded(.down) <= date.timeIntervalSince1970
        }
        return false
    }

    enum RangeAnswer: Equatable {
        case whole
        case part(ClosedRange<Int64>)
        case unsatisfiable
    }

    /// One byte range of `bytes=…`; anything it cannot serve as one range is the whole object,
    /// except a well-formed range that starts past the end.
    static func range(_ header: String, size: Int64) -> RangeAnswer {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .whole }
        switch (Int64(parts[0]), Int64(parts[1])) {
        case (nil, let suffix?) where parts[0].isEmpty:
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .part(max(0, size - suffix)...(size - 1))
        case (let start?, nil) where parts[1].isEmpty:
            guard start < size else { return .unsatisfiable }
            return .part(start...(size - 1))
        case (let start?, let end?):
            guard start <= end else { return .whole }
            guard start < size else { return .unsatisfiable }
            return .part(start...min(end, size - 1))
        default:
            return .whole
        }
    }

    static let componentAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-_.!~*'()")
        return set
    }()

    /// HTTP's date format (RFC 9110 §5.6.7, IMF-fixdate), written and read by a fixed rule rather
    /// than a `DateFormatter` made on every answer.
    static func httpDate(_ date: Date) -> String {
        let parts = gmt.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let two = { (value: Int?) in (value ?? 0) < 10 ? "0\(value ?? 0)" : "\(value ?? 0)" }
        return "\(weekdays[(parts.weekday ?? 1) - 1]), \(two(parts.day)) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) GMT"
    }

    /// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); nil for anything else.
    static func parseHTTPDate(_ text: String) -> Date? {
        let fields = text.split(separator: " ")
        guard fields.count == 6, fields[5] == "GMT", let month = months.firstIndex(of: String(fields[2])) else { return nil }
        let time = fields[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3, let day = Int(fields[1]), let year = Int(fields[3]) else { return nil }
        return gmt.date(from: DateComponents(year: year, month: month + 1, day: day, hour: time[0], minute: time[1], second: time[2]))
    }

    private static let gmt: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? .current
        return calendar
    }()
    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}
