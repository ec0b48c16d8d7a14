"""What the service talks to in the tests, one module each: real servers a test run starts for
itself (Redis, Sentinel, RabbitMQ, Postfix, Prometheus; Chromium, the browser that loads the
upload page) and stand-ins that speak a vendor's wire format and check it as the vendor does
(Twilio, Aliyun, Tencent, S3, Qiniu's tokens, SMTP, DNS, OTLP, Sentry, a caller's callback
receiver).

A peer neither starts nor drives Notifier: it uses only the harness's waiting and process
helpers, never the stack, so one can run alone (the benchmark starts its Twilio and Sentinel so).
"""
