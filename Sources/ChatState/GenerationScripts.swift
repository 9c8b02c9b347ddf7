import Queue

/// The Lua scripts of `GenerationState`. Each is one atomic step of a generation's life.
enum GenerationScripts {
    /// A Lua function for every script that publishes a session event: `relay(events, readers, maxLength, fields...)`
    /// appends the event to the session's stream and copies it, with the id of the entry before it, to the inbox of
    /// each chat-api process reading the session (the live members of `readers`, `SessionEvents.readersKey`), so a
    /// process reads its own inbox rather than every open session's stream (`EventHub`). An inbox that is gone (its
    /// process stopped; evicted) is dropped from `readers` rather than written to, so no copy lands in a key without
    /// a ttl. The inboxes are keys the script is not given, as some other scripts here build keys (one Redis, not a
    /// cluster: docs/decisions.md). Returns the event's id.
    static let relayFunction = """
        local function relay(events, readers, maxLength, ...)
          local clock = redis.call('TIME')
          local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
          local inboxes = redis.call('ZRANGEBYSCORE', readers, now, '+inf')
          local previous = '0-0'
          if #inboxes > 0 then
            local last = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
            if last[1] then previous = last[1][1] end
          end
          local id = redis.call('XADD', events, 'MAXLEN', '~', maxLength, '*', ...)
          for _, inbox in ipairs(inboxes) do
            if not redis.call('XADD', inbox, 'NOMKSTREAM', 'MAXLEN', '~', \(SessionEvents.inboxMaxLength), '*', 'key', events, 'previous', previous, 'id', id, ...) then
              redis.call('ZREM', readers, inbox)
            end
          end
          return id
        end

        """

    /// KEYS: lock, active set. ARGV: sessionId. Removes the session from the active set unless it is locked.
    static let forgetInactive = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        return redis.call('SREM', KEYS[2], ARGV[1])
        """
    )

    /// KEYS: session meta, lock, job, active set, events, history, open jobs, the user's unfinished jobs, and, when
    /// the request claims a reply-stream slot, the user's slots (`UserSlots`). ARGV: jobId, lock ttl, sessionId,
    /// userId, requested model, default model, now, meta ttl, message, messageId, record ttl, reservationId, enqueue
    /// grace ms, the user's cap on unfinished jobs (0: none), how long a job counts at most (ms), then with a slot:
    /// its id, the cap on slots, the lease ms. The job is recorded (with its reservation, which never leaves the
    /// server) and listed among the open jobs, due for the sweeper if it is not enqueued within the grace, and among
    /// the user's unfinished jobs (those that ended are dropped from that set here, lazily); the slot is taken as
    /// `UserSlots.acquire` takes it. A refusal changes nothing. A retried begin of the same job (its first answer
    /// lost) answers as the first did.
    /// Returns {'miss'}, {'notfound'}, {'busy'}, {'streams'}, {'toomany'} or {'ok', startEventId, modelId, messageCount, contentBytes, systemPrompt}.
    static let begin = RedisScript(
        """
        local meta = redis.call('HMGET', KEYS[1], 'userId', 'modelId', 'messageCount', 'contentBytes', 'deleted', 'systemPrompt')
        if meta[1] == false then return {'miss'} end
        if meta[5] == '1' or meta[1] ~= ARGV[4] then return {'notfound'} end
        -- An entry an older process wrote, without the session's system prompt: filled from the database first.
        if meta[6] == false then return {'miss'} end
        if redis.call('GET', KEYS[2]) == ARGV[1] then
          local mine = redis.call('HMGET', KEYS[3], 'status', 'startEventId', 'modelId')
          if mine[1] == 'queued' then return {'ok', mine[2], mine[3], tonumber(meta[3] or '0'), tonumber(meta[4] or '0'), meta[6] or ''} end
        end
        local model = ARGV[5]
        if model == '' then model = meta[2] or '' end
        if model == '' then model = ARGV[6] end
        if redis.call('EXISTS', KEYS[2]) == 1 then return {'busy'} end
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        if KEYS[9] then
          redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now)
          if redis.call('ZCARD', KEYS[9]) >= tonumber(ARGV[17]) then return {'streams'} end
        end
        if tonumber(ARGV[14]) > 0 then
          redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
          for _, id in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
            local status = redis.call('HGET', 'chat:job:{' .. id .. '}', 'status')
            if status ~= 'queued' and status ~= 'running' then redis.call('ZREM', KEYS[8], id) end
          end
          if redis.call('ZCARD', KEYS[8]) >= tonumber(ARGV[14]) then return {'toomany'} end
          redis.call('ZADD', KEYS[8], now + tonumber(ARGV[15]), ARGV[1])
          redis.call('PEXPIRE', KEYS[8], ARGV[15])
        end
        redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
        local last = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
        local start = '0-0'
        if #last > 0 then start = last[1][1] end
        redis.call('HSET', KEYS[3], 'status', 'queued', 'sessionId', ARGV[3], 'userId', ARGV[4], 'modelId', model,
          'startEventId', start, 'attempt', '0', 'createdAt', ARGV[7], 'message', ARGV[9], 'messageId', ARGV[10], 'reservationId', ARGV[12])
        redis.call('PEXPIRE', KEYS[3], ARGV[11])
        redis.call('SADD', KEYS[4], ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[8])
        redis.call('PEXPIRE', KEYS[6], ARGV[8])
        redis.call('ZADD', KEYS[7], now + tonumber(ARGV[13]), ARGV[1])
        if KEYS[9] then
          redis.call('ZADD', KEYS[9], now + tonumber(ARGV[18]), ARGV[16])
          redis.call('PEXPIRE', KEYS[9], ARGV[18])
        end
        return {'ok', start, model, tonumber(meta[3] or '0'), tonumber(meta[4] or '0'), meta[6] or ''}
        """
    )

    /// KEYS: job, jobs stream, open jobs. ARGV: queue timeout ms, jobId, then the entry's fields (name, value, ...).
    /// Adds the job's entry to the stream once: a job already enqueued answers with its entry id; a job no
    /// longer queued (abandoned, or ended by the sweeper) is not enqueued and answers nil. The job becomes due
    /// for the sweeper if no worker starts it within the queue timeout.
    static let enqueue = RedisScript(
        """
        local record = redis.call('HMGET', KEYS[1], 'status', 'entryId')
        if record[2] then return record[2] end
        if record[1] ~= 'queued' then return false end
        local fields = {}
        for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
        local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
        redis.call('HSET', KEYS[1], 'entryId', id)
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), ARGV[2])
        return id
        """
    )

    /// KEYS: job, lock, active set, session meta, history, events, cancel flag, open jobs, readers. ARGV: jobId, attempt,
    /// lock ttl, sessionId, events max length, events ttl, reset event ('' for none), model event, lease ms (the
    /// job is due for the sweeper if its worker does not renew it within the lease).
    /// Returns {'gone'} (no record), {'ended'}, {'stale'} (this attempt or a later one already started),
    /// {'committed', outcome} (an earlier attempt committed its outcome: finish from it; no event published),
    /// {'deleted'}, {'miss', cancelled}, {'nohistory', cancelled} or {'ok', cancelled, turns}.
    static let startRun = RedisScript(
        relayFunction + """
        local record = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'outcome')
        local status = record[1]
        if status == false then return {'gone'} end
        if status == 'completed' or status == 'failed' or status == 'cancelled' then return {'ended'} end
        if tonumber(record[2] or '0') >= tonumber(ARGV[2]) then return {'stale'} end
        redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', ARGV[2])
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        redis.call('ZADD', KEYS[8], now + tonumber(ARGV[9]), ARGV[1])
        local holder = redis.call('GET', KEYS[2])
        if holder == false or holder == ARGV[1] then
          redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
          redis.call('SADD', KEYS[3], ARGV[4])
        end
        if record[3] then return {'committed', record[3]} end
        local meta = redis.call('HMGET', KEYS[4], 'userId', 'deleted', 'history', 'historyBytes')
        if meta[2] == '1' then return {'deleted'} end
        if ARGV[7] ~= '' then
          relay(KEYS[6], KEYS[9], ARGV[5], 'jobId', ARGV[1], 'attempt', ARGV[2], 'type', 'reset', 'data', ARGV[7])
        end
        relay(KEYS[6], KEYS[9], ARGV[5], 'jobId', ARGV[1], 'attempt', ARGV[2], 'type', 'model', 'data', ARGV[8])
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

    /// KEYS: job, events, readers. ARGV: attempt, events max length, jobId, type, data. Publishes one event of a
    /// running attempt; returns its id, or 0 (nothing published) when the attempt is no longer the job's current
    /// one or the job is not running.
    static let publish = RedisScript(
        relayFunction + """
        local record = redis.call('HMGET', KEYS[1], 'attempt', 'status')
        if record[1] ~= ARGV[1] or record[2] ~= 'running' then return 0 end
        return relay(KEYS[2], KEYS[3], ARGV[2], 'jobId', ARGV[3], 'attempt', ARGV[1], 'type', ARGV[4], 'data', ARGV[5])
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

    /// KEYS: lock, job, active set, cancel flag, events, session meta, history, open jobs, pending turns, readers. ARGV:
    /// jobId, status, event type, event body, record ttl, sessionId, events max length, events ttl, stored
    /// messages, stored bytes, history max bytes, meta ttl, failed ('1': forget the history), attempt, pending
    /// turn ('' when the turn is stored; 'user' or 'reply' when the database could not take it: the record keeps
    /// the message and the job joins the pending turns, to be stored later), turns... A job that already ended is left
    /// as it is (returns 0): a second end, from a run that lost the job or a late dead letter, changes nothing,
    /// and so does the end of a job with no record (Redis lost it); nor does the end of an attempt older than the
    /// one that started last (returns -1).
    static let end = RedisScript(
        relayFunction + """
        local record = redis.call('HMGET', KEYS[2], 'status', 'attempt')
        local status = record[1]
        if status == false or status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
        if tonumber(record[2] or '0') > tonumber(ARGV[14]) then return -1 end
        relay(KEYS[5], KEYS[10], ARGV[7], 'jobId', ARGV[1], 'attempt', ARGV[14], 'type', ARGV[3], 'data', ARGV[4])
        redis.call('PEXPIRE', KEYS[5], ARGV[8])
        if ARGV[3] == 'error' then
          redis.call('HSET', KEYS[2], 'status', ARGV[2], 'result', '', 'error', ARGV[4])
        else
          redis.call('HSET', KEYS[2], 'status', ARGV[2], 'result', ARGV[4], 'error', '')
        end
        if ARGV[15] == '' then
          redis.call('HDEL', KEYS[2], 'message')
        else
          redis.call('HSET', KEYS[2], 'pendingTurn', ARGV[15])
          redis.call('SADD', KEYS[9], ARGV[1])
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[5])
        redis.call('ZREM', KEYS[8], ARGV[1])
        local holder = redis.call('GET', KEYS[1])
        if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
        -- A lock that lapsed leaves no one else to take the session off the active list.
        if holder == ARGV[1] or holder == false then
          redis.call('SREM', KEYS[3], ARGV[6])
        end
        redis.call('DEL', KEYS[4])
        local meta = redis.call('HMGET', KEYS[6], 'userId', 'deleted', 'history', 'historyBytes')
        if meta[1] == false or meta[2] == '1' then return 1 end
        redis.call('HINCRBY', KEYS[6], 'messageCount', ARGV[9])
        redis.call('HINCRBY', KEYS[6], 'contentBytes', ARGV[10])
        -- A history said to be whole whose list is gone would restart with this job's turns alone: forget it.
        local forget = ARGV[13] == '1' or ARGV[15] ~= ''
        if meta[3] == '1' and tonumber(meta[4] or '0') > 0 and redis.call('EXISTS', KEYS[7]) == 0 then forget = true end
        if forget then
          redis.call('HSET', KEYS[6], 'history', '0')
          redis.call('DEL', KEYS[7])
          redis.call('PEXPIRE', KEYS[6], ARGV[12])
          return 1
        end
        if meta[3] == '1' then
          local added = 0
          for i = 16, #ARGV do
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

    /// KEYS: lock, job, active set, cancel flag, open jobs. ARGV: jobId, record ttl, sessionId. Only a job still
    /// queued and never enqueued (its enqueue failed) is abandoned; returns 0 for one whose entry reached the
    /// stream (a worker may run it).
    static let abandon = RedisScript(
        """
        local record = redis.call('HMGET', KEYS[2], 'status', 'entryId')
        if record[1] ~= 'queued' or record[2] then return 0 end
        redis.call('HSET', KEYS[2], 'status', 'failed', 'error', 'the job could not be queued')
        redis.call('HDEL', KEYS[2], 'message')
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        redis.call('ZREM', KEYS[5], ARGV[1])
        local holder = redis.call('GET', KEYS[1])
        if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
        if holder == ARGV[1] or holder == false then
          redis.call('SREM', KEYS[3], ARGV[3])
        end
        redis.call('DEL', KEYS[4])
        return 1
        """
    )

    /// KEYS: job. ARGV: attempt. Makes `attempt` the job's current one for its end on the dead-letter path, so
    /// that every effect of an earlier attempt (one stalled, not dead) is refused from now on, and returns what
    /// an attempt committed. Returns {'gone'}, {'ended'}, {'stale'} (a later attempt runs) or {'open', outcome or
    /// nil}.
    static let takeForEnd = RedisScript(
        """
        local r = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'outcome')
        if r[1] == false then return {'gone'} end
        if r[1] == 'completed' or r[1] == 'failed' or r[1] == 'cancelled' then return {'ended'} end
        if tonumber(r[2] or '0') > tonumber(ARGV[1]) then return {'stale'} end
        redis.call('HSET', KEYS[1], 'attempt', ARGV[1])
        return {'open', r[3]}
        """
    )

    /// KEYS: job, pending turns, session meta. ARGV: jobId, stored messages, stored bytes. A pending turn was
    /// stored: the record lets the message go, the job leaves the pending turns, and the session's cached
    /// counts go up (unless the cache forgot the session or it was deleted).
    static let turnStored = RedisScript(
        """
        if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
        redis.call('HDEL', KEYS[1], 'message', 'pendingTurn')
        local meta = redis.call('HMGET', KEYS[3], 'userId', 'deleted')
        if meta[1] and meta[2] ~= '1' then
          redis.call('HINCRBY', KEYS[3], 'messageCount', ARGV[2])
          redis.call('HINCRBY', KEYS[3], 'contentBytes', ARGV[3])
        end
        return 1
        """
    )

    /// KEYS: lock, cancellation requests stream. ARGV: flag ttl ms, stream max length, the flag key's prefix and
    /// suffix around the job id. Asks the job that holds the session now to stop, reading the holder and
    /// flagging it in one step (so a job that ended meanwhile is never flagged in place of the next one);
    /// returns its id, or nil when none runs. The flag's key is derived from the holder (one Redis primary, as
    /// every script here assumes).
    static let cancelActive = RedisScript(
        """
        local jobID = redis.call('GET', KEYS[1])
        if not jobID then return false end
        redis.call('SET', ARGV[3] .. jobID .. ARGV[4], '1', 'PX', ARGV[1])
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'jobId', jobID)
        return jobID
        """
    )

    /// KEYS: open jobs, then (lock, job) per running job. ARGV: lock ttl, lease ms, then (jobId, attempt) per
    /// job. Renews the session lock and the lease of each job still running at that attempt and still holding
    /// its lock (a lock given up at the end, or lapsed and taken by another job, is left alone; a job whose
    /// attempt has not started yet is skipped); returns the job ids whose attempt is no longer current, or whose
    /// job ended or has no record: their runs should stop.
    static let renew = RedisScript(
        """
        local fenced = {}
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        for i = 2, #KEYS, 2 do
          local jobID = ARGV[i + 1]
          local record = redis.call('HMGET', KEYS[i + 1], 'status', 'attempt')
          local status = record[1]
          local attempt = tonumber(record[2] or '0')
          if status == false or status == 'completed' or status == 'failed' or status == 'cancelled' or attempt > tonumber(ARGV[i + 2]) then
            table.insert(fenced, jobID)
          elseif status == 'running' and attempt == tonumber(ARGV[i + 2]) then
            redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), jobID)
            if redis.call('GET', KEYS[i]) == jobID then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
          end
        end
        return fenced
        """
    )

    /// KEYS: open jobs, job, lock, active set, cancel flag, events, jobs stream, session meta, history, pending
    /// settlements, pending turns. ARGV: jobId, sessionId, consumer group, record ttl, events max length, events ttl, the error
    /// event's JSON for each cause (NOT_ENQUEUED, NO_WORKER, JOB_LOST).
    /// Ends a job whose deadline in the open jobs passed and that nothing will end otherwise: never enqueued
    /// (chat-api died or timed out between the claim and the enqueue), queued or running with no worker
    /// renewing it (no worker alive), or whose entry left the stream without an end (dead-lettered by a process
    /// that died before ending it, or not decodable). It publishes `error`, makes the record final with its
    /// ttl, frees the session, forgets the cached history, parks the settlement (the committed outcome's
    /// counts, a success only for a completed reply; else nothing: a refund) for the workers' retry loop, and
    /// keeps the user's message in the record, the job among the pending turns, until it is stored.
    /// Returns {'notdue'}, {'gone'}, {'final'} or {'ended', cause}.
    static let sweep = RedisScript(
        relayFunction + """
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not score or tonumber(score) > now then return {'notdue'} end
        local r = redis.call('HMGET', KEYS[2], 'status', 'entryId', 'reservationId', 'userId', 'modelId', 'message', 'messageId',
          'createdAt', 'outcome', 'attempt')
        if r[1] == false then
          redis.call('ZREM', KEYS[1], ARGV[1])
          return {'gone'}
        end
        if r[1] == 'completed' or r[1] == 'failed' or r[1] == 'cancelled' then
          redis.call('ZREM', KEYS[1], ARGV[1])
          return {'final'}
        end
        local cause = 'NOT_ENQUEUED'
        local errorEvent = ARGV[7]
        if r[2] then
          if #redis.call('XRANGE', KEYS[7], r[2], r[2]) > 0 then
            -- Queued past the queue timeout, or running with nobody renewing its lease: nobody will finish it.
            redis.call('XACK', KEYS[7], ARGV[3], r[2])
            redis.call('XDEL', KEYS[7], r[2])
            if r[1] == 'queued' then
              cause = 'NO_WORKER'
              errorEvent = ARGV[8]
            else
              cause = 'JOB_LOST'
              errorEvent = ARGV[9]
            end
          else
            cause = 'JOB_LOST'
            errorEvent = ARGV[9]
          end
        end
        local attempt = tonumber(r[10] or '0') + 1
        relay(KEYS[6], KEYS[12], ARGV[5], 'jobId', ARGV[1], 'attempt', attempt, 'type', 'error', 'data', errorEvent)
        redis.call('PEXPIRE', KEYS[6], ARGV[6])
        redis.call('HSET', KEYS[2], 'status', 'failed', 'attempt', attempt, 'result', '', 'error', errorEvent)
        if r[6] then
          redis.call('HSET', KEYS[2], 'pendingTurn', 'user')
          redis.call('SADD', KEYS[11], ARGV[1])
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
        redis.call('ZREM', KEYS[1], ARGV[1])
        local holder = redis.call('GET', KEYS[3])
        if holder == ARGV[1] then redis.call('DEL', KEYS[3]) end
        if holder == ARGV[1] or holder == false then
          redis.call('SREM', KEYS[4], ARGV[2])
        end
        redis.call('DEL', KEYS[5])
        if redis.call('EXISTS', KEYS[8]) == 1 then
          redis.call('HSET', KEYS[8], 'history', '0')
          redis.call('DEL', KEYS[9])
        end
        if r[3] and r[3] ~= '' then
          local input, output, success, model = 0, 0, false, r[5] or ''
          if r[9] then
            local ok, outcome = pcall(cjson.decode, r[9])
            if ok and type(outcome) == 'table' then
              input = tonumber(outcome.inputTokens) or 0
              output = tonumber(outcome.outputTokens) or 0
              success = outcome.status == 'completed'
              -- A fallback that answered is billed at its own prices.
              if type(outcome.modelID) == 'string' and outcome.modelID ~= '' then model = outcome.modelID end
            end
          end
          redis.call('HSET', KEYS[10], r[3], cjson.encode({reservationID = r[3], userID = r[4] or '', modelID = model,
            inputTokens = input, outputTokens = output, success = success, sessionID = ARGV[2]}))
        end
        return {'ended', cause}
        """
    )
}
