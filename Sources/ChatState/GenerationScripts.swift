import Queue

/// The Lua scripts of `GenerationState`. Each is one atomic step of a generation's life.
enum GenerationScripts {
    /// KEYS: session meta, lock, job, active set, events, history. ARGV: jobId, lock ttl, sessionId, userId,
    /// requested model, default model, now, meta ttl, message, messageId, record ttl.
    /// Returns {'miss'}, {'notfound'}, {'busy'} or {'ok', startEventId, modelId, messageCount, contentBytes}.
    static let begin = RedisScript(
        """
        local meta = redis.call('HMGET', KEYS[1], 'userId', 'modelId', 'messageCount', 'contentBytes', 'deleted')
        if meta[1] == false then return {'miss'} end
        if meta[5] == '1' or meta[1] ~= ARGV[4] then return {'notfound'} end
        local model = ARGV[5]
        if model == '' then model = meta[2] or '' end
        if model == '' then model = ARGV[6] end
        if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) == false then return {'busy'} end
        local last = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
        local start = '0-0'
        if #last > 0 then start = last[1][1] end
        redis.call('HSET', KEYS[3], 'status', 'queued', 'sessionId', ARGV[3], 'userId', ARGV[4], 'modelId', model,
          'startEventId', start, 'attempt', '0', 'createdAt', ARGV[7], 'message', ARGV[9], 'messageId', ARGV[10])
        redis.call('PEXPIRE', KEYS[3], ARGV[11])
        redis.call('SADD', KEYS[4], ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[8])
        redis.call('PEXPIRE', KEYS[6], ARGV[8])
        return {'ok', start, model, tonumber(meta[3] or '0'), tonumber(meta[4] or '0')}
        """
    )

    /// KEYS: job, lock, active set, session meta, history, events, cancel flag. ARGV: jobId, attempt, lock ttl,
    /// sessionId, events max length, events ttl, reset event ('' for none), model event.
    /// Returns {'gone'} (no record), {'ended'}, {'stale'} (this attempt or a later one already started),
    /// {'committed', outcome} (an earlier attempt committed its outcome: finish from it; no event published),
    /// {'deleted'}, {'miss', cancelled}, {'nohistory', cancelled} or {'ok', cancelled, turns}.
    static let startRun = RedisScript(
        """
        local record = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'outcome')
        local status = record[1]
        if status == false then return {'gone'} end
        if status == 'completed' or status == 'failed' or status == 'cancelled' then return {'ended'} end
        if tonumber(record[2] or '0') >= tonumber(ARGV[2]) then return {'stale'} end
        redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', ARGV[2])
        local holder = redis.call('GET', KEYS[2])
        if holder == false or holder == ARGV[1] then
          redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
          redis.call('SADD', KEYS[3], ARGV[4])
        end
        if record[3] then return {'committed', record[3]} end
        local meta = redis.call('HMGET', KEYS[4], 'userId', 'deleted', 'history', 'historyBytes')
        if meta[2] == '1' then return {'deleted'} end
        if ARGV[7] ~= '' then
          redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 'jobId', ARGV[1], 'attempt', ARGV[2], 'type', 'reset', 'data', ARGV[7])
        end
        redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 'jobId', ARGV[1], 'attempt', ARGV[2], 'type', 'model', 'data', ARGV[8])
        redis.call('PEXPIRE', KEYS[6], ARGV[6])
        local cancelled = redis.call('EXISTS', KEYS[7])
        if meta[1] == false then return {'miss', cancelled} end
        -- A history said to be whole but gone (expired or evicted apart from the summary) is read again.
        if meta[3] ~= '1' or (tonumber(meta[4] or '0') > 0 and redis.call('EXISTS', KEYS[5]) == 0) then
          return {'nohistory', cancelled}
        end
        return {'ok', cancelled, redis.call('LRANGE', KEYS[5], 0, -1)}
        """
    )

    /// KEYS: job, events. ARGV: attempt, events max length, jobId, type, data. Publishes one event of a running
    /// attempt; returns its id, or 0 (nothing published) when the attempt is no longer the job's current one
    /// or the job is not running.
    static let publish = RedisScript(
        """
        local record = redis.call('HMGET', KEYS[1], 'attempt', 'status')
        if record[1] ~= ARGV[1] or record[2] ~= 'running' then return 0 end
        return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'jobId', ARGV[3], 'attempt', ARGV[1], 'type', ARGV[4], 'data', ARGV[5])
        """
    )

    /// KEYS: job. ARGV: attempt, outcome. Records what the attempt produced, before anything of it is stored or
    /// billed, if the attempt is still the job's current one and nothing was committed yet. Returns 'ok',
    /// 'committed' (an outcome is there already), 'stale' or 'ended'.
    static let commit = RedisScript(
        """
        local record = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'outcome')
        if record[1] == false then return 'stale' end
        if record[1] == 'completed' or record[1] == 'failed' or record[1] == 'cancelled' then return 'ended' end
        if record[2] ~= ARGV[1] then return 'stale' end
        if record[3] then return 'committed' end
        redis.call('HSET', KEYS[1], 'outcome', ARGV[2])
        return 'ok'
        """
    )

    /// KEYS: lock, job, active set, cancel flag, events, session meta, history. ARGV: jobId, status, event type,
    /// event body, record ttl, sessionId, events max length, events ttl, stored messages, stored bytes, history
    /// max bytes, meta ttl, failed ('1': forget the history), attempt, turns... A job that already ended is left
    /// as it is (returns 0): a second end, from a run that lost the job or a late dead letter, changes nothing;
    /// nor does the end of an attempt older than the one that started last (returns -1).
    static let end = RedisScript(
        """
        local record = redis.call('HMGET', KEYS[2], 'status', 'attempt')
        local status = record[1]
        if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
        if tonumber(record[2] or '0') > tonumber(ARGV[14]) then return -1 end
        redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'jobId', ARGV[1], 'attempt', ARGV[14], 'type', ARGV[3], 'data', ARGV[4])
        redis.call('PEXPIRE', KEYS[5], ARGV[8])
        if ARGV[3] == 'error' then
          redis.call('HSET', KEYS[2], 'status', ARGV[2], 'result', '', 'error', ARGV[4])
        else
          redis.call('HSET', KEYS[2], 'status', ARGV[2], 'result', ARGV[4], 'error', '')
        end
        redis.call('HDEL', KEYS[2], 'message')
        redis.call('PEXPIRE', KEYS[2], ARGV[5])
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('SREM', KEYS[3], ARGV[6])
        end
        redis.call('DEL', KEYS[4])
        local meta = redis.call('HMGET', KEYS[6], 'userId', 'deleted', 'history', 'historyBytes')
        if meta[1] == false or meta[2] == '1' then return 1 end
        redis.call('HINCRBY', KEYS[6], 'messageCount', ARGV[9])
        redis.call('HINCRBY', KEYS[6], 'contentBytes', ARGV[10])
        -- A history said to be whole whose list is gone would restart with this job's turns alone: forget it.
        local forget = ARGV[13] == '1'
        if meta[3] == '1' and tonumber(meta[4] or '0') > 0 and redis.call('EXISTS', KEYS[7]) == 0 then forget = true end
        if forget then
          redis.call('HSET', KEYS[6], 'history', '0')
          redis.call('DEL', KEYS[7])
          redis.call('PEXPIRE', KEYS[6], ARGV[12])
          return 1
        end
        if meta[3] == '1' then
          local added = 0
          for i = 15, #ARGV do
            redis.call('RPUSH', KEYS[7], ARGV[i])
            added = added + #ARGV[i]
          end
          local bytes = redis.call('HINCRBY', KEYS[6], 'historyBytes', added)
          while bytes > tonumber(ARGV[11]) do
            local dropped = redis.call('LPOP', KEYS[7])
            if not dropped then break end
            bytes = redis.call('HINCRBY', KEYS[6], 'historyBytes', -#dropped)
          end
          redis.call('PEXPIRE', KEYS[7], ARGV[12])
        end
        redis.call('PEXPIRE', KEYS[6], ARGV[12])
        return 1
        """
    )

    /// KEYS: lock, job, active set, cancel flag. ARGV: jobId, record ttl, sessionId. Only a job still queued
    /// (never picked up: its enqueue failed) is abandoned; returns 0 for one a worker already started.
    static let abandon = RedisScript(
        """
        if redis.call('HGET', KEYS[2], 'status') ~= 'queued' then return 0 end
        redis.call('HSET', KEYS[2], 'status', 'failed', 'error', 'the job could not be queued')
        redis.call('HDEL', KEYS[2], 'message')
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('SREM', KEYS[3], ARGV[3])
        end
        redis.call('DEL', KEYS[4])
        return 1
        """
    )

    /// KEYS: (lock, job) per running job. ARGV: lock ttl, then (jobId, attempt) per job. Renews the session
    /// lock of each job still running at that attempt and still holding its lock (a lock given up at the end,
    /// or lapsed and taken by another job, is left alone; a job whose attempt has not started yet is skipped);
    /// returns the job ids whose attempt is no longer current, or whose job ended or has no record: their
    /// runs should stop.
    static let renew = RedisScript(
        """
        local fenced = {}
        for i = 1, #KEYS, 2 do
          local jobID = ARGV[i + 1]
          local record = redis.call('HMGET', KEYS[i + 1], 'status', 'attempt')
          local status = record[1]
          local attempt = tonumber(record[2] or '0')
          if status == false or status == 'completed' or status == 'failed' or status == 'cancelled' or attempt > tonumber(ARGV[i + 2]) then
            table.insert(fenced, jobID)
          elseif status == 'running' and attempt == tonumber(ARGV[i + 2]) and redis.call('GET', KEYS[i]) == jobID then
            redis.call('PEXPIRE', KEYS[i], ARGV[1])
          end
        end
        return fenced
        """
    )
}
