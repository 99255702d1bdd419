module github.com/weft-stm/weft

go 1.26
