import Foundation
import HTTPTypes
import Hummingbird

/// An error on `/storage/v1/s3`, as S3 answers one (docs/protocols/storage-reference.md §8.5):
/// the real HTTP status and an XML body boto3 reads `Code` and `Message` from,
///
/// ```xml
/// <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
/// <Error><Code>NoSuchKey</Code><Message>Object not found</Message><Resource>bucket/key</Resource></Error>
/// ```
///
/// `<Error>` has no namespace, as S3 writes it: botocore reads `Code` only from a root element
/// named exactly `Error` (with S3's namespace on it, boto3 raises with an empty code). An
/// answer to HEAD has no body (boto3 then names the error by its status: `"404"`).
struct S3Error: Error, HTTPResponseError, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = headers
        // A HEAD answer has no body, but says what a GET's would be.
        if request.method == .head {
            headers[.contentType] = S3XML.contentType
            return Response(status: status, headers: headers)
        }
        if request.method == .put || request.method == .post {
            // An error may come before the body was read, and S3 clients send `Expect:
            // 100-continue`: botocore then sends no body, while the server would wait for it
            // before reading the next request. Closing makes the client open a new connection
            // rather than send its next request into the old body.
            headers[.connection] = "close"
        }
        let path = request.uri.path
        let resource = path.hasPrefix(S3Controller.prefix + "/") ? String(path.dropFirst(S3Controller.prefix.count + 1)) : ""
        let resourceText = (resource.removingPercentEncoding ?? resource)
        return S3XML.response("Error", S3XML.element("Code", code) + S3XML.element("Message", message)
                                  + S3XML.element("Resource", resourceText), status: status, headers: headers, namespaced: false)
    }

    // MARK: S3's errors

    static let noSuchKey = S3Error(.notFound, "NoSuchKey", "Object not found")
    static let noSuchBucket = S3Error(.notFound, "NoSuchBucket", "Bucket not found")
    static let noSuchUpload = S3Error(.notFound, "NoSuchUpload", "Upload not found")
    static let missingSignature = S3Error(.forbidden, "AccessDenied", "Missing signature")
    static let invalidAccessKey = S3Error(.forbidden, "InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records.")
    static let signatureMismatch = S3Error(.forbidden, "SignatureDoesNotMatch",
                                           "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
    static let expired = S3Error(.forbidden, "AccessDenied", "Request has expired")
    static let skewed = S3Error(.forbidden, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.")
    static let missingContentLength = S3Error(.lengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    static let payloadMismatch = S3Error(.badRequest, "XAmzContentSHA256Mismatch",
                                         "The provided 'x-amz-content-sha256' header does not match what was computed.")
    static let notImplemented = S3Error(.notImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented.")

    static func invalidRequest(_ message: String) -> S3Error { S3Error(.badRequest, "InvalidRequest", message) }
    static func invalidArgument(_ message: String) -> S3Error { S3Error(.badRequest, "InvalidArgument", message) }
    static func malformedXML(_ message: String) -> S3Error {
        S3Error(.badRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate: \(message)")
    }
}
