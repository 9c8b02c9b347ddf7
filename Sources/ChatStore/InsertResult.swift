/// What became of one document of an unordered `insert` command.
package enum InsertResult: Sendable, Equatable {
    /// Written.
    case inserted
    /// Refused by a unique index (E11000): a document with that key is there already.
    case duplicateKey
    /// Refused for another reason.
    case failed(code: Int, message: String)

    /// Every document's result from an unordered `insert` reply of `count` documents: written unless the
    /// reply's `writeErrors` names its index.
    package static func each(of reply: BSONFields, count: Int) -> [InsertResult] {
        var results = [InsertResult](repeating: .inserted, count: count)
        for error in reply["writeErrors"]?.arrayValue ?? [] {
            guard let fields = error.documentValue, let index = fields["index"]?.intValue, results.indices.contains(index) else { continue }
            results[index] = failure(fields)
        }
        return results
    }

    /// A reported write error (`code`, `errmsg`): E11000 or another.
    package static func failure(_ fields: BSONFields) -> InsertResult {
        fields["code"]?.intValue == 11000
            ? .duplicateKey : .failed(code: fields["code"]?.intValue ?? 0, message: fields["errmsg"]?.stringValue ?? "")
    }
}
