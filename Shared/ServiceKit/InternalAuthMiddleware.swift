import Contracts
import HTTPTypes
import Hummingbird

/// Guards `/internal/...` routes: the caller must present the shared service token in
/// `X-Service-Token` (or as `Authorization: Bearer …`). The comparison takes the same time
/// whatever the bytes, so the token cannot be guessed byte by byte.
public struct InternalAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    private let token: [UInt8]

    public init(token: String) {
        self.token = Array(token.utf8)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let presented = request.headers[HTTPField.Name(PlatformHeader.serviceToken)!]
            ?? request.headers[.authorization].flatMap { value in
                value.hasPrefix("Bearer ") ? String(value.dropFirst("Bearer ".count)) : nil
            }
        guard let presented else {
            throw APIError(.unauthorized, code: "unauthorized", message: "This endpoint is for platform services only.")
        }
        guard constantTimeEquals(Array(presented.utf8), token) else {
            context.logger.warning("rejected internal call with a wrong service token")
            throw APIError(.forbidden, code: "forbidden", message: "The service token is not valid.")
        }
        return try await next(request, context)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
    let count = max(a.count, b.count)
    for index in 0..<count {
        let x = index < a.count ? a[index] : 0
        let y = index < b.count ? b[index] : 0
        difference |= x ^ y
    }
    return difference == 0 && a.count == b.count
}
