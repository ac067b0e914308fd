import Crypto
import Foundation
import Hummingbird

/// Undoes `Content-Encoding: aws-chunked` (docs/protocols/storage-reference.md §8.4, step 5):
/// a body whose `x-amz-content-sha256` is one of the `STREAMING-…` values arrives as frames
///
/// ```
/// <hex size>[;chunk-signature=<64 hex>]\r\n<data>\r\n   … repeated, then
/// 0[;chunk-signature=<64 hex>]\r\n[<trailer name>:<value>\r\n …]\r\n
/// ```
///
/// (HTTP's own chunking is already undone by the server). Pure and incremental: `append` the
/// body's buffers as they come, take the decoded bytes with `next`, and call `finish` at the
/// end. With `signing` (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) each chunk's signature
/// is checked when its data ends, chained to the previous one; a bad one throws, so the caller's
/// write fails and nothing is stored. The trailer is read; an `x-amz-checksum-crc32` in it (what
/// boto3 sends) must be the CRC-32 of the decoded bytes (Supabase does not check it; here a
/// mismatch fails like a bad signature, as `checksum`). Other checksums are not checked. Bounds: a chunk header or trailer line of at most 256
/// bytes, a chunk of at most 16 MiB, at most 16 trailer lines.
struct AWSChunkedDecoder: Sendable {
    enum Failure: Error, Equatable {
        /// The framing is broken; the reason is safe to show.
        case malformed(String)
        /// A chunk's signature does not match.
        case signature
        /// The trailer's `x-amz-checksum-crc32` is not the bytes'.
        case checksum
    }

    /// What checks the chunk signatures: the request's signature (the seed) and its key.
    struct Signing: Sendable {
        var signature: SigV4.Signature
        var key: SymmetricKey
    }

    static let maximumLine = 256
    static let maximumChunk = 16 << 20
    static let maximumTrailerLines = 16

    private enum State: Equatable {
        case header
        case data(remaining: Int)
        case dataEnd
        case trailer(lines: Int)
        case done
    }

    private var state = State.header
    private var pending = ByteBuffer()
    private let signing: Signing?
    private var previousSignature: String
    private var chunkSignature: String?
    private var chunkHasher = SHA256()
    /// Decoded bytes so far.
    private(set) var decodedBytes: Int64 = 0
    private var crc = CRC32()

    init(signing: Signing?) {
        self.signing = signing
        self.previousSignature = signing?.signature.signature ?? ""
    }

    /// Adds the next bytes of the body.
    mutating func append(_ buffer: ByteBuffer) {
        // Usually everything before was consumed: take the buffer as it is, no copy.
        if pending.readableBytes == 0 {
            pending = buffer
        } else {
            pending.discardReadBytes()
            pending.writeImmutableBuffer(buffer)
        }
    }

    /// The next decoded bytes that `append`ed input holds; nil when more input is needed (or
    /// the body is complete).
    mutating func next() throws(Failure) -> ByteBuffer? {
        while true {
            switch state {
            case .header:
                guard let line = try takeLine() else { return nil }
                let (size, signature) = try Self.chunkHeader(line)
                guard size <= Self.maximumChunk else { throw .malformed("An aws-chunked chunk is larger than 16 MiB.") }
                if signing != nil, signature == nil { throw .malformed("A chunk has no chunk-signature.") }
                chunkSignature = signature
                chunkHasher = SHA256()
                if size == 0 {
                    try checkChunkSignature()
                    state = .trailer(lines: 0)
                } else {
                    state = .data(remaining: size)
                }
            case .data(let remaining):
                guard pending.readableBytes > 0 else { return nil }
                let count = min(remaining, pending.readableBytes)
                guard let slice = pending.readSlice(length: count) else { return nil }
                slice.withUnsafeReadableBytes { bytes in
                    if signing != nil { chunkHasher.update(bufferPointer: bytes) }
                    crc.update(bytes)
                }
                decodedBytes += Int64(count)
                state = remaining == count ? .dataEnd : .data(remaining: remaining - count)
                return slice
            case .dataEnd:
                guard pending.readableBytes >= 2 else { return nil }
                guard pending.readBytes(length: 2) == [0x0D, 0x0A] else { throw .malformed("A chunk's data is not followed by CRLF.") }
                try checkChunkSignature()
                state = .header
            case .trailer(let lines):
                guard let line = try takeLine() else { return nil }
                if line.isEmpty {
                    state = .done
                } else {
                    guard lines + 1 <= Self.maximumTrailerLines, let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                        throw .malformed("The aws-chunked trailer is malformed.")
                    }
                    let name = String(decoding: line[..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
                    if name == "x-amz-checksum-crc32" {
                        let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                        guard value == crc.base64 else { throw .checksum }
                    }
                    state = .trailer(lines: lines + 1)
                }
            case .done:
                guard pending.readableBytes == 0 else { throw .malformed("Bytes follow the aws-chunked body's end.") }
                return nil
            }
        }
    }

    /// The body ended: throws unless the final chunk and its trailer arrived, with nothing after.
    func finish() throws(Failure) {
        guard state == .done, pending.readableBytes == 0 else {
            throw .malformed(state == .done ? "Bytes follow the aws-chunked body's end." : "The aws-chunked body ended early.")
        }
    }

    // MARK: Helpers

    /// A line up to CRLF (without it), or nil when it has not all arrived.
    private mutating func takeLine() throws(Failure) -> [UInt8]? {
        let view = pending.readableBytesView
        guard let index = view.firstIndex(of: 0x0A) else {
            guard view.count <= Self.maximumLine else { throw .malformed("An aws-chunked line is too long.") }
            return nil
        }
        let length = index - view.startIndex + 1
        guard length <= Self.maximumLine + 2 else { throw .malformed("An aws-chunked line is too long.") }
        let bytes = pending.readBytes(length: length) ?? []
        guard bytes.count >= 2, bytes[bytes.count - 2] == 0x0D else { throw .malformed("An aws-chunked line does not end in CRLF.") }
        return Array(bytes.dropLast(2))
    }

    /// `<hex>[;chunk-signature=<sig>]`.
    static func chunkHeader(_ line: [UInt8]) throws(Failure) -> (size: Int, signature: String?) {
        let text = String(decoding: line, as: UTF8.self)
        let parts = text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        guard let sizeText = parts.first, !sizeText.isEmpty, sizeText.count <= 8, let size = Int(sizeText, radix: 16), size >= 0 else {
            throw .malformed("An aws-chunked chunk size is not hexadecimal.")
        }
        guard parts.count == 2 else { return (size, nil) }
        let extensionText = parts[1]
        guard extensionText.hasPrefix("chunk-signature=") else { throw .malformed("An aws-chunked chunk header is malformed.") }
        let signature = String(extensionText.dropFirst("chunk-signature=".count)).lowercased()
        guard signature.count == 64 else { throw .malformed("A chunk-signature must be 64 hex digits.") }
        return (size, signature)
    }

    private mutating func checkChunkSignature() throws(Failure) {
        guard let signing else { return }
        guard let claimed = chunkSignature else { throw .malformed("A chunk has no chunk-signature.") }
        let text = SigV4.chunkStringToSign(signing.signature, previous: previousSignature, chunkSHA256: SigV4.hex(chunkHasher.finalize()))
        let expected = SigV4.sign(text, key: signing.key)
        guard SigV4.constantTimeEquals(expected, claimed) else { throw .signature }
        previousSignature = claimed
    }
}

/// CRC-32 (IEEE 802.3, as zlib and AWS's `x-amz-checksum-crc32` compute it), table-driven.
struct CRC32: Sendable {
    private var value: UInt32 = 0xFFFF_FFFF

    static let table: [UInt32] = (0..<256).map { index in
        var entry = UInt32(index)
        for _ in 0..<8 { entry = entry & 1 == 1 ? 0xEDB8_8320 ^ (entry >> 1) : entry >> 1 }
        return entry
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = value
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        value = crc
    }

    var checksum: UInt32 { value ^ 0xFFFF_FFFF }

    /// Base64 of the big-endian checksum: the header's form.
    var base64: String {
        let sum = checksum
        return Data([UInt8(sum >> 24), UInt8((sum >> 16) & 0xFF), UInt8((sum >> 8) & 0xFF), UInt8(sum & 0xFF)]).base64EncodedString()
    }
}
