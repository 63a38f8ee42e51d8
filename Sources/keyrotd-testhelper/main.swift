import Foundation
import KeyRotationAdapters

// Test-only child processes for the state-file tests, which kill them, race them for
// the lock, and read their exit codes, and for the control-socket tests, which need a
// client that is not root. The logic under test lives in the adapter; this only
// dispatches.
//
//     write-loop PATH        take the lock, clean up, save bodies of 100 B–200 KB forever;
//                            prints "ready" after the first save
//     save PATH              prepare the directory, take the lock, save one small body
//     hold-lock PATH         take the lock, print "locked", sleep until killed
//     try-lock PATH          exit 0 if the lock can be taken, 75 if it is held
//     load PATH [MAXVERSION] print "version V length N" (or "absent"); 78 on refusal
//     control-as UID GID GROUPS SOCKET JSON
//                            drop to UID, GID and GROUPS (comma-separated, "-" for none),
//                            send JSON as one request line to the control socket SOCKET
//                            and print the raw reply line; the client's exit code on failure
//     http-get URL CAFILE|- PROXY|-
//                            one GET through HTTPClient; prints "status N" or "error CODE"
enum ExitCode {
    static let failure: Int32 = 1
    static let usage: Int32 = 64
    static let locked: Int32 = 75
    static let refused: Int32 = 78
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String, _ code: Int32 = ExitCode.failure) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(code)
}

func writeLoop(_ state: StateFile) -> Never {
    do {
        try state.prepareDirectory()
        let lock = try state.lock()
        _ = try state.removeLeftoverTemporaries(holding: lock)
        saveForever(state, holding: lock)
    } catch {
        fail(error.description)
    }
}

/// Owns the lock until the process is killed: the point of the kill tests.
func saveForever(_ state: StateFile, holding lock: consuming StateFileLock) -> Never {
    var counter = 0
    while true {
        // Mostly state-file-sized bodies, so most of the time is spent inside save's
        // create/write/fsync/rename window where a kill matters; now and then a large one.
        let size = Int.random(in: 0..<8) == 0 ? Int.random(in: 4_000...200_000) : Int.random(in: 100...4_000)
        let padding = String(repeating: "x", count: size)
        let body = #"{"counter":\#(counter),"padding":"\#(padding)"}"#
        do {
            try state.save(body: Array(body.utf8), version: 1)
        } catch {
            fail(error.description)
        }
        if counter == 0 { say("ready") }
        counter += 1
    }
}

func saveOnce(_ state: StateFile) -> Never {
    do {
        try state.prepareDirectory()
        let lock = try state.lock()
        try state.save(body: Array(#"{"saved":true}"#.utf8), version: 1)
        lock.release()
        exit(0)
    } catch {
        fail(error.description)
    }
}

func holdLock(_ state: StateFile) -> Never {
    do {
        let lock = try state.lock()
        sleepForever(holding: lock)
    } catch {
        fail(error.description)
    }
}

/// Owns the lock until the process is killed.
func sleepForever(holding lock: consuming StateFileLock) -> Never {
    say("locked")
    while true { sleep(3600) }
}

func tryLock(_ state: StateFile) -> Never {
    do {
        let lock = try state.lock()
        lock.release()
        exit(0)
    } catch {
        fail(error.description, error.code == .locked ? ExitCode.locked : ExitCode.failure)
    }
}

func load(_ state: StateFile, maxSupportedVersion: Int) -> Never {
    do {
        if let (version, body) = try state.load(maxSupportedVersion: maxSupportedVersion) {
            say("version \(version) length \(body.count)")
        } else {
            say("absent")
        }
        exit(0)
    } catch {
        fail(error.description, ExitCode.refused)
    }
}

/// The control-socket tests run as root; this is how they knock as somebody else.
func controlAs(_ arguments: ArraySlice<String>) -> Never {
    let arguments = Array(arguments)
    guard arguments.count == 5, let uid = uid_t(arguments[0]), let gid = gid_t(arguments[1]) else {
        fail("usage: keyrotd-testhelper control-as UID GID GROUPS SOCKET JSON", ExitCode.usage)
    }
    let groups = arguments[2] == "-" ? [] : arguments[2].split(separator: ",").compactMap { gid_t($0) }
    guard setgroups(groups.count, groups) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
        fail("cannot drop privileges: \(String(cString: strerror(errno)))")
    }
    do {
        let reply = try ControlClient.exchange(Array((arguments[4] + "\n").utf8), with: arguments[3], timeout: .seconds(10))
        say(String(decoding: reply, as: UTF8.self))
        exit(0)
    } catch {
        fail(error.description, error.exitCode)
    }
}

let arguments = CommandLine.arguments
if arguments.count >= 2, arguments[1] == "control-as" { controlAs(arguments.dropFirst(2)) }
if arguments.count >= 2, arguments[1] == "http-get" { httpGet(arguments.dropFirst(2)) }
guard arguments.count >= 3 else {
    fail("usage: keyrotd-testhelper write-loop|save|hold-lock|try-lock|load PATH [MAXVERSION] | control-as ...", ExitCode.usage)
}
let state = StateFile(path: arguments[2])
switch arguments[1] {
case "write-loop": writeLoop(state)
case "save": saveOnce(state)
case "hold-lock": holdLock(state)
case "try-lock": tryLock(state)
case "load": load(state, maxSupportedVersion: arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1)
default: fail("unknown subcommand \(arguments[1])", ExitCode.usage)
}
