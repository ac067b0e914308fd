/// The request id of the work the current task is doing on behalf of an inbound request.
///
/// A server's middleware binds it for the duration of each request:
///
/// ```swift
/// try await CorrelationContext.$requestID.withValue(id) {
///     try await next(request, context)
/// }
/// ```
///
/// and every ``CurlHTTPClient`` call made inside (child tasks included) sends it as
/// ``header`` (`X-Request-Id`), unless the call sets that header itself. Outside any binding, the client sends a
/// freshly generated id, so every hop can still be correlated.
///
/// (Not named `RequestContext`: Hummingbird's `RequestContext` protocol would make that name
/// ambiguous in every file that imports both.)
public enum CorrelationContext {
    @TaskLocal public static var requestID: String?

    /// The header that carries the request id on every request the client sends.
    public static let header = "X-Request-Id"
}
