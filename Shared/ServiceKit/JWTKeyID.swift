import Foundation

/// The `kid` of a compact JWT's header, read without verifying anything.
///
/// jwt-kit verifies a token whose `kid` it does not hold with its default key (the first one
/// added), and a token without `kid` the same way; so every verifier here looks the key id up
/// itself first: a token must name a key the verifier holds (or learns of by reloading).
public enum JWTKeyID {
    public static func of(_ token: String) -> String? {
        guard let header = token.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first,
              (1...2048).contains(header.utf8.count)
        else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        struct Header: Decodable { var kid: String? }
        guard let data = Data(base64Encoded: base64), let kid = (try? JSONDecoder().decode(Header.self, from: data))?.kid,
              !kid.isEmpty
        else { return nil }
        return kid
    }
}
