-- SRTP re-key through the relay with pktgen-dpdk 23.03: pktgen cannot make SRTP, so it
-- replays a capture of fresh, valid SRTP that `relay-gen pcap` wrote for the relay's
-- sessions file, at each rate in turn, each step sending its own share of the capture (the
-- relay drops replayed SRTP: no packet may go twice), and writes sent and received packets
-- per step as CSV.
--
--   relay-gen sessions --streams 1000 --out sessions.json
--   relay-gen pcap --sessions sessions.json --relay-mac <relay leg-a MAC> --per-stream 300 --out srtp.pcap
--   PKTGEN_CAPTURE_PACKETS=300000 PKTGEN_RATES=1,2,5 PKTGEN_CSV=srtp.csv \
--     pktgen -l 0,1 [EAL: ports] -- -P -m "1.[0-1]" -s 0:srtp.pcap -f bench/pktgen/srtp-pcap.lua
--
-- Settings (environment): PKTGEN_CAPTURE_PACKETS (required: the frames in the capture, as
-- relay-gen pcap reports them; at least 24,576, or pktgen repeats the file to fill its pool
-- and the repeats are replays), PKTGEN_RATES (percent of the link speed, default 1),
-- PKTGEN_TX_PORT / PKTGEN_RX_PORT (0 / 1), PKTGEN_CSV (default relay-pktgen.csv),
-- PKTGEN_STEP_TIMEOUT (seconds a step may take, default 120), PKTGEN_FRAME_SIZE (the
-- capture's frame size with the FCS, for the CSV: 228 for G.711 SRTP; default 0, unknown).
-- pktgen sends the capture in file order and goes on where the last step stopped.
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
local C = dofile(dir .. "relay-common.lua")

C.run("srtp-pcap", function()
  local frames = tonumber(C.required("PKTGEN_CAPTURE_PACKETS", "the frames in the capture"))
  if frames < 24576 then
    error("the capture has " .. frames .. " frames: pktgen repeats a capture under 24,576 frames to fill its pool, and the relay drops the repeats as replays; write more with relay-gen pcap --per-stream")
  end
  local tx, rx = C.env("PKTGEN_TX_PORT", "0"), C.env("PKTGEN_RX_PORT", "1")
  local rates = C.numbers(C.env("PKTGEN_RATES", "1"))
  local limit = tonumber(C.env("PKTGEN_STEP_TIMEOUT", "120"))
  local per_step = math.floor(frames / #rates)
  local size = tonumber(C.env("PKTGEN_FRAME_SIZE", "0")) -- for the CSV only
  local csv, path = C.open_csv()

  pktgen.stop("all")
  pktgen.pcap(tx, "on")
  pktgen.set(tx, "burst", 32)
  pktgen.process("all", "on")
  for _, rate in ipairs(rates) do
    pktgen.set(tx, "rate", rate)
    pktgen.set(tx, "count", per_step)
    C.step(csv, "srtp-pcap", tx, rx, size, rate, function()
      local t0 = C.now()
      pktgen.start(tx)
      pktgen.delay(200)
      while pktgen.isSending(tx)[tonumber(tx)] == "y" do
        if C.now() - t0 > limit then
          pktgen.stop(tx)
          error(string.format("a step of %d frames at %g%% took over %d s", per_step, rate, limit))
        end
        pktgen.delay(50)
      end
    end)
  end
  csv:close()
  print("relay-pktgen: CSV written to " .. path)
end)
