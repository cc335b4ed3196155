"""`make bench`: our MQTT client against umqtt.simple, umqtt.robust and mqtt_async (of
the mqtt_as family), and against the protocol's and the modem manual's minimum, on
the same workload in one run. `python -m bench` writes bench/results.json and
bench/RESULTS.md; see __main__ for what runs."""
