package lex

import "github.com/parleyhq/parley/channels/voice"

func voiceText(s string) voice.Speech { return voice.FromText(s) }
