-- RTP -> RTP through the relay with pktgen-dpdk 23.03's range mode: the flows of a plain-RTP
-- sessions file (as `relay-gen pktgen-flows` writes them), stepped through frame sizes and
-- rates, each step's sent and received packets read back from the ports and written as CSV.
--
--   relay-gen sessions --streams 1024 --suite rtp --out sessions.json
--   relay-gen pktgen-flows --sessions sessions.json --relay-mac <relay leg-a MAC> --out flows.lua
--   PKTGEN_FLOWS=flows.lua PKTGEN_RATES=1,2,5 PKTGEN_SECONDS=10 PKTGEN_CSV=rtp.csv \
--     pktgen -l 0,1 [EAL: ports] -- -P -m "1.[0-1]" -f bench/pktgen/rtp-range.lua
--
-- Settings (environment): PKTGEN_FLOWS (required), PKTGEN_RATES (percent of the link speed,
-- default 1), PKTGEN_SIZES (frame sizes with the 4-byte FCS, default the flows' G.711 size),
-- PKTGEN_SECONDS per step (default 10), PKTGEN_TX_PORT / PKTGEN_RX_PORT (0 / 1: the port
-- cabled to the relay's leg a / leg b), PKTGEN_CSV (default relay-pktgen.csv).
-- The payload starts with 0x80 0x00 (RTP version 2, payload type 0): the relay forwards RTP.
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
local C = dofile(dir .. "relay-common.lua")

C.run("rtp-range", function()
  local flows = dofile(C.required("PKTGEN_FLOWS", "the flows file relay-gen pktgen-flows wrote"))
  local tx, rx = C.env("PKTGEN_TX_PORT", "0"), C.env("PKTGEN_RX_PORT", "1")
  local rates = C.numbers(C.env("PKTGEN_RATES", "1"))
  local sizes = C.numbers(C.env("PKTGEN_SIZES", tostring(flows.frame_size)))
  local seconds = tonumber(C.env("PKTGEN_SECONDS", "10"))
  local csv, path = C.open_csv()

  pktgen.stop("all")
  pktgen.set(tx, "count", 0)
  pktgen.set(tx, "burst", 32)
  pktgen.range.set_type(tx, "ipv4")
  pktgen.range.ip_proto(tx, "udp")
  pktgen.range.dst_mac(tx, "start", flows.dst_mac)
  for _, w in ipairs({ "start", "min", "max" }) do
    pktgen.range.src_ip(tx, w, flows.src_ip)
    pktgen.range.dst_ip(tx, w, flows.dst_ip)
  end
  pktgen.range.src_ip(tx, "inc", "0.0.0.0")
  pktgen.range.dst_ip(tx, "inc", "0.0.0.0")
  -- Both port ranges advance together, one step a packet (relay-gen's pktgen.rs says why
  -- they pair).
  for _, w in ipairs({ "start", "min", "max", "inc" }) do
    local k = w
    if w == "start" then k = "min" end
    pktgen.range.src_port(tx, w, flows.sport[k])
    pktgen.range.dst_port(tx, w, flows.dport[k])
  end
  -- The pattern covers the frame from byte 0; the UDP payload starts at byte 42, index 10
  -- of the 16-byte pattern: 0x80 then zeros.
  pktgen.userPattern(tx, "ABCDEFGHIJ\128")
  pktgen.process("all", "on")

  for _, size in ipairs(sizes) do
    for _, w in ipairs({ "start", "min", "max" }) do pktgen.range.pkt_size(tx, w, size) end
    pktgen.range.pkt_size(tx, "inc", 0)
    pktgen.set(tx, "size", size) -- the rate is computed from this size, also in range mode
    pktgen.set_range(tx, "on")
    for _, rate in ipairs(rates) do
      pktgen.set(tx, "rate", rate)
      C.step(csv, "rtp-range", tx, rx, size, rate, function()
        pktgen.start(tx)
        pktgen.delay(math.floor(seconds * 1000))
        pktgen.stop(tx)
      end)
    end
    pktgen.set_range(tx, "off")
  end
  csv:close()
  print("relay-pktgen: CSV written to " .. path)
end)
