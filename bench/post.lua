-- A form POST with an Authorization header, both passed after `--`:
--   wrk -s bench/post.lua http://127.0.0.1:PORT/token -- "<form body>" "<Authorization value>"
-- wrk builds the (static) request after init() returns.
function init(args)
   wrk.method = "POST"
   wrk.body = args[1]
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   if args[2] ~= nil and args[2] ~= "" then
      wrk.headers["Authorization"] = args[2]
   end
end
