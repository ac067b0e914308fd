import Crypto
import Foundation
import Hummingbird
import Synchronization

/// A byte sequence passed through unchanged, its MD5 taken on the way: an S3 part's ETag when
/// its bytes come from another object (UploadPartCopy) rather than the request (`S3Payload`
/// takes its own). The digest is set once the sequence has ended.
struct MD5Bytes<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer

    let base: Base
    let digest = S3Payload.Digest()

    func makeAsyncIterator() -> Iterator {
        Iterator(base: base.makeAsyncIterator(), digest: digest)
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let digest: S3Payload.Digest
        var md5 = Insecure.MD5()

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else {
                digest.set(SigV4.hex(md5.finalize()))
                return nil
            }
            chunk.withUnsafeReadableBytes { md5.update(bufferPointer: $0) }
            return chunk
        }
    }
}
