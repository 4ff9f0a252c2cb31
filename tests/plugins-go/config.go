package main

// The plugin configuration, read the way the Go SDK's examples read theirs: a JSON document
// decoded with a strict library that refuses what it does not understand. A configuration that
// does not start with `{` is a plain word (`noop`, or anything a test only wants echoed).

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

type pluginConfig struct {
	// Request headers added to every request.
	Headers map[string]string `json:"headers"`
	// Register this shared queue; the root logs what arrives on it.
	RegisterQueue string `json:"register_queue"`
	// Enqueue a line for every request on this queue of another VM.
	SendQueue *queueRef `json:"send_queue"`
	// What the network context does besides logging (network.go).
	Network *networkConfig `json:"network"`
}

type queueRef struct {
	VMID string `json:"vm_id"`
	Name string `json:"name"`
}

func parseConfig(text string) (pluginConfig, error) {
	var config pluginConfig
	if !strings.HasPrefix(strings.TrimSpace(text), "{") {
		return config, nil
	}
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&config); err != nil {
		return config, err
	}
	if _, err := decoder.Token(); err != io.EOF {
		return config, errors.New("unexpected data after the JSON object")
	}
	if config.SendQueue != nil && (config.SendQueue.VMID == "" || config.SendQueue.Name == "") {
		return config, errors.New("send_queue needs both vm_id and name")
	}
	return config, nil
}
