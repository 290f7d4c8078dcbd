-- Authorization-code round trips for a logged-in browser session:
--   GET /authorize (session cookie) -> 302 with ?code=... -> POST /token (code, PKCE verifier).
-- Arguments after `--`: authorize path+query, Cookie header, token form body without the
-- code (ends in "&code="), Authorization header of the client.
-- Each thread keeps its own queue of codes; a connection that is free redeems a waiting code,
-- otherwise it asks for a new one. At the end, done() prints the completed round trips.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local authorize_path, cookie, token_body, authorization
local codes = {}
roundtrips = 0
failures = 0

function init(args)
   authorize_path, cookie, token_body, authorization = args[1], args[2], args[3], args[4]
end

function request()
   local code = table.remove(codes)
   if code ~= nil then
      return wrk.format("POST", "/token", {
         ["Content-Type"] = "application/x-www-form-urlencoded",
         ["Authorization"] = authorization,
      }, token_body .. code)
   end
   return wrk.format("GET", authorize_path, {["Cookie"] = cookie})
end

-- wrk keys headers as the server spelled them: gunicorn sends "Location", granian "location".
function location(headers)
   for name, value in pairs(headers) do
      if string.lower(name) == "location" then
         return value
      end
   end
   return ""
end

function response(status, headers, body)
   if status == 302 or status == 303 then  -- node answers 303 See Other
      local code = string.match(location(headers), "[?&]code=([^&]+)")
      if code ~= nil then
         table.insert(codes, code)
      else
         failures = failures + 1
      end
   elseif status == 200 then
      roundtrips = roundtrips + 1
   else
      failures = failures + 1
   end
end

function done(summary, latency, requests)
   local total, failed = 0, 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("roundtrips")
      failed = failed + thread:get("failures")
   end
   io.write(string.format("BENCH roundtrips=%d failures=%d\n", total, failed))
end
