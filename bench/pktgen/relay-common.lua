-- Shared by bench/pktgen/rtp-range.lua and srtp-pcap.lua (pktgen-dpdk 23.03, Lua 5.3):
-- settings from the environment, one measured step (clear, send, stop, drain, read the port
-- counters), CSV rows, and a run that always ends pktgen (an error in a script would leave
-- it at its prompt).
local M = {}

-- A setting from the environment, or its default.
function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

-- A setting that must be there.
function M.required(name, what)
  local v = os.getenv(name)
  if v == nil or v == "" then error(name .. ": " .. what .. " (not set)") end
  return v
end

-- "0.5,1,2" -> {0.5, 1, 2}
function M.numbers(list)
  local out = {}
  for item in string.gmatch(list, "[^,%s]+") do
    local n = tonumber(item)
    if n == nil then error("not a number: " .. item) end
    out[#out + 1] = n
  end
  if #out == 0 then error("an empty list") end
  return out
end

-- Wall-clock seconds (os.clock is CPU time, os.time whole seconds).
function M.now()
  local p = io.popen("date +%s.%N")
  if p then
    local t = tonumber(p:read("*l"))
    p:close()
    if t then return t end
  end
  return os.time()
end

M.CSV_HEADER = "mode,frame_size,rate_percent,seconds,tx_packets,rx_packets,tx_pps,rx_pps,loss_percent,rx_missed,rx_errors,rx_nombuf"

-- Opens the CSV (PKTGEN_CSV, default relay-pktgen.csv) and writes its header.
function M.open_csv()
  local path = M.env("PKTGEN_CSV", "relay-pktgen.csv")
  local f = assert(io.open(path, "w"))
  f:write(M.CSV_HEADER, "\n")
  f:flush()
  return f, path
end

-- One step: counters cleared, `send()` runs the traffic (it returns when it is done), the
-- relay's queues drain, then the sending port's opackets and the receiving port's ipackets
-- (pktgen samples the counters once a second: wait past the next sample).
function M.step(csv, mode, tx, rx, size, rate, send)
  pktgen.clr()
  pktgen.delay(1100)
  local t0 = M.now()
  send()
  local seconds = M.now() - t0
  pktgen.delay(1500)
  local st = pktgen.portStats(tx .. "," .. rx, "port")
  local out, inn = st[tonumber(tx)], st[tonumber(rx)]
  local sent, got = out.opackets, inn.ipackets
  local loss = 0
  if sent > 0 then loss = 100 * (sent - math.min(got, sent)) / sent end
  local row = string.format("%s,%d,%g,%.3f,%d,%d,%.0f,%.0f,%.4f,%d,%d,%d",
    mode, size, rate, seconds, sent, got, sent / seconds, got / seconds, loss,
    inn.imissed or 0, inn.ierrors or 0, inn.rx_nombuf or 0)
  csv:write(row, "\n")
  csv:flush()
  print("relay-pktgen: " .. row)
  return row
end

-- Runs `body` with pktgen's screen off; prints any error; always quits pktgen.
function M.run(name, body)
  pktgen.screen("off")
  local ok, err = pcall(body)
  if ok then
    print("relay-pktgen: " .. name .. " done")
  else
    print("relay-pktgen: " .. name .. " FAILED: " .. tostring(err))
    local f = io.open(M.env("PKTGEN_CSV", "relay-pktgen.csv") .. ".failed", "w")
    if f then f:write(tostring(err), "\n"); f:close() end
  end
  pktgen.quit()
end

return M
