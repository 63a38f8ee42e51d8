import SystemPackage

/// The two calls on which the write recipe's safety rests, as a seam: tests replace
/// them (through `@testable import`) to inject short writes, EINTR, ENOSPC and fsync
/// failures into real saves. Production code always uses `.system`.
struct StateFileIO: Sendable {
    /// One write(2): may write fewer bytes than offered, or throw `.interrupted`.
    var writeSome: @Sendable (FileDescriptor, UnsafeRawBufferPointer) throws(Errno) -> Int
    /// One fsync(2), never retried by the caller.
    var synchronize: @Sendable (FileDescriptor) throws(Errno) -> Void

    static let system = StateFileIO(
        writeSome: { descriptor, bytes throws(Errno) in
            try Syscall.typed { try descriptor.write(bytes, retryOnInterrupt: false) }
        },
        synchronize: { descriptor throws(Errno) in
            try Syscall.synchronize(descriptor)
        })

    /// Writes every byte, resuming after short writes and EINTR. A write that makes no
    /// progress is reported as EIO rather than looping forever.
    func writeAll(_ descriptor: FileDescriptor, _ bytes: [UInt8]) throws(Errno) {
        let outcome = bytes.withUnsafeBytes { buffer in
            Result { () throws(Errno) in try writeAll(descriptor, buffer) }
        }
        try outcome.get()
    }

    private func writeAll(_ descriptor: FileDescriptor, _ buffer: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < buffer.count {
            let remaining = UnsafeRawBufferPointer(rebasing: buffer[offset...])
            let written = try Syscall.retryingOnInterrupt { () throws(Errno) in
                try writeSome(descriptor, remaining)
            }
            guard written > 0, written <= remaining.count else { throw Errno.ioError }
            offset += written
        }
    }
}
