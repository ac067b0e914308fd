import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// A request body as an S3 client sends it, streamed (docs/protocols/storage-reference.md §8.3,
/// §8.4): by its signature's payload hash (`x-amz-content-sha256`),
///
/// | payload hash | body |
/// |---|---|
/// | 64 hex digits | the bytes, whose SHA-256 must be that (checked at the end: 400 `XAmzContentSHA256Mismatch`) |
/// | `UNSIGNED-PAYLOAD` | the bytes, unchecked |
/// | `STREAMING-UNSIGNED-PAYLOAD-TRAILER` | aws-chunked (`AWSChunkedDecoder`), unchecked |
/// | `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` | aws-chunked, each chunk's signature checked |
///
/// Its length is `X-Amz-Decoded-Content-Length` (aws-chunked) or `Content-Length`, and the
/// bytes must come to it; a `Content-MD5` must be theirs (400 `BadDigest`). Every check fails by throwing from the sequence, so the write
/// consuming it removes what it wrote. The MD5 of the bytes (an S3 part's ETag) is in `digest`
/// once the sequence has ended.
struct S3Payload: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let body: RequestBody
    let chunked: AWSChunkedDecoder.Signing??
    let expectedSHA256: String?
    /// The length the client declared (nil: chunked transfer without a declared length).
    let declaredLength: Int64?
    /// `Content-MD5` (base64), when the client sent one: the bytes must have it.
    let contentMD5: String?
    let digest = Digest()

    /// The MD5 of the bytes, lower-case hex, set when the body has ended well.
    final class Digest: Sendable {
        private let value = Mutex<String?>(nil)
        var md5: String? { value.withLock { $0 } }
        func set(_ md5: String) { value.withLock { $0 = md5 } }
    }

    static let decodedLength = HTTPField.Name("X-Amz-Decoded-Content-Length")!

    static let contentMD5Field = HTTPField.Name("Content-MD5")!

    init(_ request: Request, caller: S3Access.Caller) throws {
        body = request.body
        contentMD5 = request.headers[Self.contentMD5Field].map { $0.trimmingCharacters(in: .whitespaces) }
        if let contentMD5, Data(base64Encoded: contentMD5)?.count != 16 {
            throw S3Error(.badRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
        }
        let hash = caller.signature.payloadHash
        if hash.hasPrefix("STREAMING-") {
            switch hash {
            case "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
                chunked = .some(nil)
            case "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER":
                chunked = .some(AWSChunkedDecoder.Signing(signature: caller.signature, key: caller.signingKey))
            default:
                throw S3Error.invalidArgument("x-amz-content-sha256 \(hash.prefix(64)) is not supported.")
            }
            expectedSHA256 = nil
            guard let text = request.headers[Self.decodedLength] else { throw S3Error.missingContentLength }
            guard let length = Int64(text), length >= 0 else { throw S3Error.invalidArgument("X-Amz-Decoded-Content-Length is not a byte count.") }
            declaredLength = length
        } else {
            chunked = nil
            if hash == SigV4.unsignedPayload {
                expectedSHA256 = nil
            } else {
                guard hash.count == 64, hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                    throw S3Error.invalidArgument("x-amz-content-sha256 must be a lower-case hex SHA-256 or a known keyword.")
                }
                expectedSHA256 = hash
            }
            if let text = request.headers[.contentLength] {
                guard let length = Int64(text), length >= 0 else { throw S3Error.invalidArgument("Content-Length is not a byte count.") }
                declaredLength = length
            } else {
                declaredLength = nil
            }
        }
    }

    /// The body collected whole, within `limit` bytes (the XML bodies), checked as the stream is.
    func collect(upTo limit: Int) async throws -> [UInt8] {
        if let declaredLength, declaredLength > Int64(limit) { throw S3Error(.contentTooLarge, "EntityTooLarge", "The request body is too large.") }
        var bytes: [UInt8] = []
        for try await chunk in self {
            guard bytes.count + chunk.readableBytes <= limit else { throw S3Error(.contentTooLarge, "EntityTooLarge", "The request body is too large.") }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(upstream: body.makeAsyncIterator(), decoder: chunked.map { AWSChunkedDecoder(signing: $0) },
                 sha256: expectedSHA256.map { ($0, SHA256()) }, declaredLength: declaredLength, contentMD5: contentMD5, digest: digest)
    }

    struct Iterator: AsyncIteratorProtocol {
        var upstream: RequestBody.AsyncIterator
        var decoder: AWSChunkedDecoder?
        var sha256: (expected: String, hasher: SHA256)?
        let declaredLength: Int64?
        let contentMD5: String?
        let digest: Digest
        var md5 = Insecure.MD5()
        var count: Int64 = 0
        var ended = false

        mutating func next() async throws -> ByteBuffer? {
            guard !ended else { return nil }
            while true {
                if var decoder {
                    let decoded = try decoder.next()
                    self.decoder = decoder
                    if let decoded { return try account(decoded) }
                }
                guard let chunk = try await upstream.next() else {
                    try decoder?.finish()
                    try end()
                    return nil
                }
                if decoder != nil {
                    decoder?.append(chunk)
                } else if chunk.readableBytes > 0 {
                    return try account(chunk)
                }
            }
        }

        private mutating func account(_ chunk: ByteBuffer) throws -> ByteBuffer {
            count += Int64(chunk.readableBytes)
            if let declaredLength, count > declaredLength {
                throw S3Error(.badRequest, "IncompleteBody", "The body is longer than its declared length.")
            }
            chunk.withUnsafeReadableBytes { bytes in
                md5.update(bufferPointer: bytes)
                sha256?.hasher.update(bufferPointer: bytes)
            }
            return chunk
        }

        private mutating func end() throws {
            ended = true
            if let declaredLength, count != declaredLength {
                throw S3Error(.badRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
            }
            if let sha256, SigV4.hex(sha256.hasher.finalize()) != sha256.expected { throw S3Error.payloadMismatch }
            let computed = Data(md5.finalize())
            if let contentMD5, computed.base64EncodedString() != contentMD5 {
                throw S3Error(.badRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
            }
            digest.set(SigV4.hex(computed))
        }
    }
}
