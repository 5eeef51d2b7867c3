// Command floor is the lower bound Parley's turns are measured against by
// scripts/perf.sh: bare gin plus one pipelined Redis round trip per turn,
// with no sandbox, no routing, no locking and no analytics. It answers the
// same requests as Parley's web and Alexa channels with the same answers a
// handler that counts the turns of its session would give.
//
//	go run ./tools/floor -addr 127.0.0.1:8081 -redis redis://127.0.0.1:6379/0 -token T -skill amzn1.ask.skill.x
//
// POST /hooks/{bot}/web takes {"user": ..., "text": ...} with the bearer
// token; POST /hooks/{bot}/alexa takes an IntentRequest and checks its skill
// id and timestamp (not its signature), as Parley does with
// verify_signature false.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

// sessionTTL is how long a session counter lives after its last turn.
const sessionTTL = 30 * time.Minute

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	url := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	token := flag.String("token", "", "web channel bearer token")
	skill := flag.String("skill", "", "Alexa skill id")
	flag.Parse()

	opts, err := redis.ParseURL(*url)
	if err != nil {
		log.Fatalf("floor: %v", err)
	}
	f := &floor{rdb: redis.NewClient(opts), token: *token, skill: *skill}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/hooks/:bot/web", f.web)
	r.POST("/hooks/:bot/alexa", f.alexa)
	r.GET("/readyz", func(c *gin.Context) { c.String(http.StatusOK, "ready") })
	srv := &http.Server{Addr: *addr, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

type floor struct {
	rdb   *redis.Client
	token string
	skill string
}

// count adds one to a session's turns and renews its lifetime, in one
// pipelined round trip, and returns the new count.
func (f *floor) count(ctx context.Context, key string) (int64, error) {
	var incr *redis.IntCmd
	_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.HIncrBy(ctx, key, "turns", 1)
		p.Expire(ctx, key, sessionTTL)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return incr.Val(), nil
}

type webMessage struct {
	User string `json:"user"`
	Text string `json:"text"`
}

type webReply struct {
	Text    string   `json:"text"`
	Options []string `json:"options,omitempty"`
}

type webAnswer struct {
	Conversation    string     `json:"conversation"`
	Intent          string     `json:"intent"`
	Replies         []webReply `json:"replies"`
	EndConversation bool       `json:"end_conversation"`
}

func (f *floor) web(c *gin.Context) {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(f.token)) != 1 {
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	var m webMessage
	if err := c.ShouldBindJSON(&m); err != nil || m.User == "" {
		c.AbortWithStatus(http.StatusBadRequest)
		return
	}
	n, err := f.count(c, "floor:{"+c.Param("bot")+":web:"+m.User+"}:state")
	if err != nil {
		c.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	c.JSON(http.StatusOK, webAnswer{Conversation: m.User, Intent: "Hello",
		Replies: []webReply{{Text: "Hello " + m.User + ", turn " + strconv.FormatInt(n, 10), Options: []string{"again"}}}})
}

type alexaEnvelope struct {
	Session struct {
		SessionID   string `json:"sessionId"`
		Application struct {
			ApplicationID string `json:"applicationId"`
		} `json:"application"`
	} `json:"session"`
	Request struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Intent    struct {
			Name  string `json:"name"`
			Slots map[string]struct {
				Value string `json:"value"`
			} `json:"slots"`
		} `json:"intent"`
	} `json:"request"`
}

type alexaSpeech struct {
	Type string `json:"type"`
	SSML string `json:"ssml"`
}

type alexaAnswer struct {
	Version  string `json:"version"`
	Response struct {
		OutputSpeech alexaSpeech `json:"outputSpeech"`
		Reprompt     struct {
			OutputSpeech alexaSpeech `json:"outputSpeech"`
		} `json:"reprompt"`
		ShouldEndSession bool `json:"shouldEndSession"`
	} `json:"response"`
}

func (f *floor) alexa(c *gin.Context) {
	var env alexaEnvelope
	if err := c.ShouldBindJSON(&env); err != nil {
		c.AbortWithStatus(http.StatusBadRequest)
		return
	}
	ts, err := time.Parse(time.RFC3339, env.Request.Timestamp)
	if err != nil || time.Since(ts).Abs() > 150*time.Second || env.Session.Application.ApplicationID != f.skill {
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	n, err := f.count(c, "floor:{"+c.Param("bot")+":alexa:"+env.Session.SessionID+"}:state")
	if err != nil {
		c.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	size := env.Request.Intent.Slots["size"].Value
	if size == "" {
		size = "medium"
	}
	var a alexaAnswer
	a.Version = "1.0"
	a.Response.OutputSpeech = alexaSpeech{Type: "SSML", SSML: fmt.Sprintf("<speak>A %s pizza, turn %d. Anything else?</speak>", size, n)}
	a.Response.Reprompt.OutputSpeech = alexaSpeech{Type: "SSML", SSML: "<speak>Anything else?</speak>"}
	body, err := json.Marshal(a)
	if err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Data(http.StatusOK, "application/json;charset=UTF-8", body)
}
