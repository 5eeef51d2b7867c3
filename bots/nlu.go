package bots

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/parleyhq/parley/intents/nlu"
	"github.com/redis/go-redis/v9"
)

// NLU data and models: uploads of examples, the stored model shared by
// every replica, and the models decoded in this process. Training itself is
// in training.go.

// PutNLU replaces a bot's NLU data and trains its classifier. Up to
// NLUSyncExamples examples, the model is trained before PutNLU returns and
// stored with the data in one step. Larger data is stored at once and
// trained in the background: the previous model keeps serving on every
// replica until the new one is stored, which bumps the bot's generation.
func (c *Catalog) PutNLU(ctx context.Context, bot string, n NLU) error {
	if err := validateNLU(n); err != nil {
		return err
	}
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	raw, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode nlu: %w", err)
	}
	sum := checksum(raw)
	k := c.keys(bot)
	if n.Examples() > c.cfg.NLUSyncExamples {
		if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, k.nlu, raw, 0)
			p.Set(ctx, k.nluSum, sum, 0)
			p.Set(ctx, k.training, sum, c.cfg.NLUTrainTimeout)
			return nil
		}); err != nil {
			return fmt.Errorf("save nlu of %s: %w", bot, err)
		}
		c.trainInBackground(bot, n, sum)
		return nil
	}
	m, model, err := c.train(ctx, bot, n)
	if err != nil {
		return err
	}
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.nlu, raw, 0)
		p.Set(ctx, k.nluSum, sum, 0)
		if m != nil {
			p.Set(ctx, k.model, sum+string(model), 0)
		} else {
			p.Del(ctx, k.model) // no examples: no classifier
		}
		p.Del(ctx, k.training)
		p.Incr(ctx, k.gen)
		return nil
	}); err != nil {
		return fmt.Errorf("save nlu of %s: %w", bot, err)
	}
	c.trainers.cancel(bot)
	if m != nil {
		c.models.set(bot, storedModel{sum: sum, model: m})
	}
	c.announce(ctx, bot)
	return nil
}

// checksum identifies NLU data as Redis scripts can (redis.sha1hex).
func checksum(raw []byte) string {
	h := sha1.Sum(raw)
	return hex.EncodeToString(h[:])
}

// storeModel stores a model trained on the data with checksum sum, if that
// is still the bot's data, and announces the change.
func (c *Catalog) storeModel(ctx context.Context, bot, sum string, m *nlu.Model, raw []byte) error {
	k := c.keys(bot)
	ok, err := modelScript.Run(ctx, c.rdb, []string{k.nlu, k.nluSum, k.model, k.gen, k.training}, sum, raw).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return nil // the data changed meanwhile; its own training stores its model
	}
	c.models.set(bot, storedModel{sum: sum, model: m})
	c.announce(ctx, bot)
	return nil
}

// GetNLU returns a bot's NLU examples.
func (c *Catalog) GetNLU(ctx context.Context, bot string) (NLU, error) {
	if err := c.requireBot(ctx, bot); err != nil {
		return NLU{}, err
	}
	raw, err := c.rdb.Get(ctx, c.keys(bot).nlu).Bytes()
	if errors.Is(err, redis.Nil) {
		return NLU{Intents: map[string][]string{}}, nil
	}
	if err != nil {
		return NLU{}, fmt.Errorf("read nlu of %s: %w", bot, err)
	}
	var n NLU
	if err := json.Unmarshal(raw, &n); err != nil {
		return NLU{}, fmt.Errorf("decode nlu of %s: %w", bot, err)
	}
	return n, nil
}

// sumLen is the length of a checksum: sha1 in hex.
const sumLen = 40

// loadModel returns the bot's stored model, decoding it only when it is not
// the one this replica already has. A model trained on older data (a newer
// upload still training) keeps serving. When there is no model, or only one
// in a format this release does not read, the data is trained again here:
// small data before loadModel returns, large data in the background (until
// then the bot has no classifier). A model of an older format this release
// still reads ([nlu.Model.Outdated]) is trained again the same way, except
// that large data keeps the old model serving until the new one is stored.
func (c *Catalog) loadModel(ctx context.Context, bot, dataSum, modelSum string) (*nlu.Model, error) {
	have, ok := c.models.get(bot)
	if ok && have.sum == modelSum && modelSum != "" && !have.model.Outdated() {
		c.resumeTraining(ctx, bot, dataSum, modelSum)
		return have.model, nil
	}
	k := c.keys(bot)
	var outdated *nlu.Model
	if len(modelSum) == sumLen {
		raw, err := c.rdb.Get(ctx, k.model).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("load model of %s: %w", bot, err)
		}
		if len(raw) > sumLen {
			m, err := nlu.UnmarshalModel(raw[sumLen:])
			switch {
			case err == nil && !m.Outdated():
				sum := string(raw[:sumLen])
				c.models.set(bot, storedModel{sum: sum, model: m})
				c.resumeTraining(ctx, bot, dataSum, sum)
				return m, nil
			case err == nil:
				outdated = m
				c.log.Info("stored model is from an older release; retraining", "bot", bot)
			default:
				c.log.Warn("stored model is unreadable or from another release; retraining", "bot", bot, "err", err)
			}
		}
	}
	raw, err := c.rdb.Get(ctx, k.nlu).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load nlu of %s: %w", bot, err)
	}
	var n NLU
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("decode nlu of %s: %w", bot, err)
	}
	sum := checksum(raw)
	if n.Examples() > c.cfg.NLUSyncExamples {
		c.resumeTraining(ctx, bot, sum, "")
		return outdated, nil
	}
	m, model, err := c.train(ctx, bot, n)
	if err != nil || m == nil {
		if outdated != nil {
			c.log.Warn("retraining failed; the older model keeps serving", "bot", bot, "err", err)
			return outdated, nil
		}
		return nil, err
	}
	if err := c.storeModel(ctx, bot, sum, m, model); err != nil {
		c.log.Warn("store retrained model", "bot", bot, "err", err)
	}
	return m, nil
}

// resumeTraining starts a background training when the stored model is
// older than the data and no replica holds the training lease (the one that
// accepted the upload stopped before it finished).
func (c *Catalog) resumeTraining(ctx context.Context, bot, dataSum, modelSum string) {
	if dataSum == "" || dataSum == modelSum {
		return
	}
	if c.trainers.busy(bot) {
		return
	}
	k := c.keys(bot)
	ok, err := c.rdb.SetNX(ctx, k.training, dataSum, c.cfg.NLUTrainTimeout).Result()
	if err != nil || !ok {
		return
	}
	raw, err := c.rdb.Get(ctx, k.nlu).Bytes()
	if err != nil {
		return
	}
	var n NLU
	if err := json.Unmarshal(raw, &n); err != nil || checksum(raw) != dataSum {
		return
	}
	c.log.Info("resuming an unfinished training", "bot", bot)
	c.trainInBackground(bot, n, dataSum)
}

// storedModel is a decoded model with the checksum of the NLU data it was
// trained on.
type storedModel struct {
	sum   string
	model *nlu.Model
}

// models holds, per bot, the last model this process decoded or trained,
// kept across reloads so an unchanged model is not decoded again.
type models struct {
	mu    sync.Mutex
	byBot map[string]storedModel
}

func newModels() *models { return &models{byBot: make(map[string]storedModel)} }

func (ms *models) get(bot string) (storedModel, bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m, ok := ms.byBot[bot]
	return m, ok
}

func (ms *models) set(bot string, m storedModel) {
	ms.mu.Lock()
	ms.byBot[bot] = m
	ms.mu.Unlock()
}

func (ms *models) drop(bot string) {
	ms.mu.Lock()
	delete(ms.byBot, bot)
	ms.mu.Unlock()
}
