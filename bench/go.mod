module github.com/weft-stm/weft/bench

go 1.26

require (
	github.com/anacrolix/stm v0.2.0
	github.com/lukechampine/stm v0.0.0-20191022212748-05486c32d236
	github.com/weft-stm/weft v0.0.0-00010101000000-000000000000
)

replace github.com/weft-stm/weft => ../
