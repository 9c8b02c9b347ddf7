import Foundation

/// A process of the stack to account for, by the name the report gives it.
struct MonitoredProcess: Sendable, Codable, Equatable {
    var name: String
    var pid: Int32

    /// Parses `name=PID`.
    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, !parts[0].isEmpty, let pid = Int32(parts[1].trimmingCharacters(in: .whitespaces)), pid > 0 else { return nil }
        self.name = String(parts[0])
        self.pid = pid
    }

    init(name: String, pid: Int32) {
        self.name = name
        self.pid = pid
    }
}

/// Reads what Linux's /proc says of a process and its children: CPU time (utime + stime), resident memory
/// (now and at its peak), and its TCP connections to a port.
enum ProcFS {
    /// Clock ticks per second, the unit of /proc/PID/stat's times.
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// A /proc file's whole text. Read with read(2) to the end: /proc files report a size of 0, and Foundation's
    /// `String(contentsOfFile:)` then stops after the first page (which cuts /proc/net/tcp short).
    static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The process and its live descendants.
    static func tree(_ root: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let stat = statFields(pid), stat.count > 1, let parent = Int32(stat[1]) else { continue }
            children[parent, default: []].append(pid)
        }
        var result: [Int32] = []
        var pending = [root]
        while let pid = pending.popLast() {
            result.append(pid)
            pending += children[pid] ?? []
        }
        return result
    }

    /// The fields of /proc/PID/stat after the command name: state is [0], ppid [1], utime [11], stime [12].
    private static func statFields(_ pid: Int32) -> [Substring]? {
        guard let text = read("/proc/\(pid)/stat"),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// CPU seconds (user + system) the process has used so far, or nil when it is gone.
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let fields = statFields(pid), fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }

    /// A `Vm…` line of /proc/PID/status in KiB (`VmHWM` is the peak resident set, `VmRSS` the current one).
    static func memoryKiB(_ pid: Int32, field: String) -> Int? {
        guard let text = read("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        }
        return nil
    }

    /// How many established TCP connections the process holds to `port` on any address.
    static func connections(_ pid: Int32, toPort port: Int) -> Int {
        let directory = "/proc/\(pid)/fd"
        var inodes = Set<Substring>()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + entry),
                target.hasPrefix("socket:[")
            else { continue }
            inodes.insert(Substring(target.dropFirst(8).dropLast()))
        }
        let portHex = String(format: "%04X", port)
        var count = 0
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = read(table) else { continue }
            let remote = ":" + portHex + " "
            for line in text.split(separator: "\n").dropFirst() where line.contains(remote) {
                let columns = line.split(separator: " ")
                // sl local remote st tx:rx tr:when retrnsmt uid timeout inode
                guard columns.count > 9, columns[3] == "01", columns[2].hasSuffix(":" + portHex), inodes.contains(columns[9]) else { continue }
                count += 1
            }
        }
        return count
    }
}

/// What one process used over a measured phase.
struct ProcessUsage: Codable, Sendable {
    var name: String
    var pid: Int32
    /// CPU milliseconds (user + system, the process and its children) over the phase.
    var cpuMilliseconds: Double
    /// Peak resident set (VmHWM) summed over the process and its children, in KiB, at the end of the phase.
    var peakRSSKiB: Int
}

/// CPU counters of every monitored process at one moment, to subtract from a later one.
struct CPUSnapshot: Sendable {
    private var seconds: [Int32: Double] = [:]

    /// Reads every process's (and its children's) CPU time now.
    init(_ processes: [MonitoredProcess]) {
        for process in processes {
            seconds[process.pid] = ProcFS.tree(process.pid).compactMap(ProcFS.cpuSeconds).reduce(0, +)
        }
    }

    /// What each process used since `self`, with its peak memory so far.
    func usage(until later: CPUSnapshot, of processes: [MonitoredProcess]) -> [ProcessUsage] {
        processes.map { process in
            let delta = (later.seconds[process.pid] ?? 0) - (seconds[process.pid] ?? 0)
            let peak = ProcFS.tree(process.pid).compactMap { ProcFS.memoryKiB($0, field: "VmHWM") }.reduce(0, +)
            return ProcessUsage(name: process.name, pid: process.pid, cpuMilliseconds: max(0, delta) * 1_000, peakRSSKiB: peak)
        }
    }
}
