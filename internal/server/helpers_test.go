package server_test

import "encoding/json"

// faultType reads the type of a NeutronError body.
func faultType(body []byte) string {
	var f struct {
		NeutronError struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"NeutronError"`
	}
	if json.Unmarshal(body, &f) != nil {
		return "(not a NeutronError: " + string(body) + ")"
	}
	return f.NeutronError.Type
}
