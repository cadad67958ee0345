# bench/peers/event-contract.jq: contracts/event.schema.json as jq tests, the jq peer of
# evvalidate in bench/run. Run with `jq -rR -f bench/peers/event-contract.jq`: each input line
# that is one JSON object meeting the contract is written out unchanged (as evvalidate copies
# valid records byte for byte); others are dropped.
#   type object, additionalProperties false, required event_id, event_type, user_id, ts;
#   event_id: string matching ^[A-Za-z0-9_-]{1,64}$; event_type: one of the enum;
#   user_id: string of 1 to 64 characters;
#   ts: oneOf an integer in [946684800000, 4102444800000) or a string that is an RFC 3339
#       date-time (format "date-time") and matches ^20[0-9]{2}-;
#   value: number >= 0; session_id: string; properties: object (all three optional).
. as $line
| fromjson?
| select(type == "object"
	and (keys - ["event_id", "event_type", "user_id", "ts", "value", "session_id", "properties"]
		| length == 0)
	and has("event_id") and has("event_type") and has("user_id") and has("ts")
	and (.event_id | type == "string" and test("^[A-Za-z0-9_-]{1,64}$"))
	and (.event_type | IN("page_view", "click", "add_to_cart", "purchase"))
	and (.user_id | type == "string" and length >= 1 and length <= 64)
	and (.ts | (type == "number" and . == floor and . >= 946684800000 and . < 4102444800000)
		or (type == "string" and test("^20[0-9]{2}-")
			and test("^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")))
	and ((has("value") | not) or (.value | type == "number" and . >= 0))
	and ((has("session_id") | not) or (.session_id | type == "string"))
	and ((has("properties") | not) or (.properties | type == "object")))
| $line
